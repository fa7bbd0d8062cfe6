"""What the DAP job tests share: posting a query, waiting for its job, and reading its files."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from typing import Any
from urllib.parse import urlsplit

TSV_UNESCAPES = {
    "\\\\": "\\",
    "\\0": "\x00",
    "\\b": "\b",
    "\\f": "\f",
    "\\n": "\n",
    "\\r": "\r",
    "\\t": "\t",
    "\\v": "\v",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_query(client: Any, token: str, table: str, **query: Any) -> Any:
    return client.post(f"/dap/query/canvas/table/{table}/data", json=query, headers=bearer(token))


def wait_for(client: Any, token: str, job_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/dap/job/{job_id}", headers=bearer(token))
        body: dict[str, Any] = response.json()
        if body.get("status") not in ("waiting", "running"):
            assert response.status_code == 200, response.text
            return body
        assert response.status_code == 202, response.text
        assert set(body) == {"id", "status", "expires_at"}
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {body['status']}")
        time.sleep(0.05)


def run_query(client: Any, token: str, table: str, **query: Any) -> dict[str, Any]:
    response = post_query(client, token, table, **query)
    assert response.status_code in (200, 202), response.text
    return wait_for(client, token, response.json()["id"])


def object_url(client: Any, token: str, object_id: str) -> str:
    response = client.post("/dap/object/url", json=[{"id": object_id}], headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["urls"] and list(body["urls"]) == [object_id]
    assert list(body["urls"][object_id]) == ["url"]
    url: str = body["urls"][object_id]["url"]
    return url


def download(client: Any, url: str) -> bytes:
    """The object's bytes, fetched as the dap client does: the URL verbatim, no Authorization."""
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200, response.text
    return gzip.decompress(response.content)


def job_text(client: Any, token: str, job: dict[str, Any]) -> list[str]:
    """Every object's decompressed text, in object order."""
    return [download(client, object_url(client, token, item["id"])).decode() for item in job["objects"]]


def jsonl_records(texts: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for text in texts for line in text.splitlines()]


def csv_rows(texts: list[str]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for text in texts:
        rows.extend(csv.DictReader(io.StringIO(text)))
    return rows


def tsv_field(raw: str) -> str | None:
    if raw == "\\N":
        return None
    out, i = [], 0
    while i < len(raw):
        pair = raw[i : i + 2]
        if pair in TSV_UNESCAPES:
            out.append(TSV_UNESCAPES[pair])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def tsv_rows(texts: list[str]) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for text in texts:
        lines = text.split("\n")
        assert lines[-1] == ""
        header = lines[0].split("\t")
        rows.extend(dict(zip(header, map(tsv_field, line.split("\t")), strict=True)) for line in lines[1:-1])
    return rows
