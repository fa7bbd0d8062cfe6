"""``lmsauth serve`` as operators run it: its stderr is one JSON object per line, every request
has one access line under the id its response announced, no secret of a whole flow is ever
written, and with several workers any worker's ``/metrics`` counts for all of them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from lmsauth.settings import Settings
from tests.commons.support import Lti
from tests.conftest import Directory, free_port
from tests.full_flow import every_flow
from tests.identity.helpers import make_client
from tests.production.support import Serve

pytestmark = pytest.mark.server
TOKEN = "metrics-token-0123456789abcdef"


def _own_url(settings: Settings) -> tuple[Settings, int]:
    port = free_port()
    return settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"}), port


def test_the_logs_of_a_whole_flow_are_json_lines_with_request_ids_and_no_secret(settings: Settings) -> None:
    served, port = _own_url(settings)
    server = Serve(served, port=port, LMSAUTH_LOG_FORMAT="json", LMSAUTH_LOG_LEVEL="info")
    try:
        server.wait_until_up()
        seen = every_flow(server.http, Lti.install(Directory(served), served), make_client(served))
    finally:
        server.stop()

    assert server.lines, "lmsauth serve logged nothing"
    records = [json.loads(line) for line in server.lines]  # every line is one JSON object
    for secret in seen.secrets:
        assert secret not in server.stderr, f"a secret was logged: {secret[:6]}..."
    announced = set(seen.request_ids)
    access = [record for record in records if record["logger"] == "lmsauth.access"]
    assert sorted(record["request_id"] for record in access) == sorted(seen.request_ids)
    for record in records:
        assert record["logger"] != "uvicorn.access"
        if record["logger"] in ("lmsauth.identity", "lmsauth.dap", "lmsauth.commons"):
            assert record["request_id"] in announced, record
        if record["request_id"] is not None:
            assert record["request_id"] in announced, record
    for record in access:
        assert set(record) >= {"method", "route", "status", "duration_ms", "client_ip", "request_id"}
        assert "?" not in record["route"] and record["client_ip"] == "127.0.0.1"
    assert any(record["message"].startswith("lmsauth serving on") for record in records)


def test_with_two_workers_any_workers_metrics_count_for_both(settings: Settings, tmp_path: Path) -> None:
    served, port = _own_url(settings)
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"left over from an earlier run")
    server = Serve(
        served,
        port=port,
        args=("--workers", "2"),
        LMSAUTH_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    try:
        server.wait_until_up()
        requests = 60
        for _ in range(requests):  # a new connection each time, so both workers take some
            assert httpx.get(f"{server.url}/healthz", headers={"Connection": "close"}).status_code == 200
        assert not (folder / "counter_999999.db").exists()
        writers = {path.stem.rsplit("_", 1)[1] for path in folder.glob("counter_*.db")}
        assert len(writers) == 2, writers
        line = 'lmsauth_requests_total{method="GET",route="/healthz",status="200"}'
        for _ in range(6):
            scraped = httpx.get(
                f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"}
            )
            assert scraped.status_code == 200, scraped.text
            counts = [row for row in scraped.text.splitlines() if row.startswith(line)]
            assert counts == [f"{line} {float(requests)}"], counts
    finally:
        server.stop()
