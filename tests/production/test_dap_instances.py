"""DAP jobs across two ``lmsauth serve`` processes over one database: a query posted to one is
polled, and its objects listed and downloaded, at the other (DESIGN.md, "Many instances").
Over PostgreSQL the objects live in the database (``LMSAUTH_DAP_OBJECT_STORE=auto``); over
SQLite the two processes share the data folder, as they share the file."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from lmsauth.settings import Settings
from tests.conftest import Directory, free_port
from tests.dap.jobs_helpers import tsv_rows
from tests.identity.helpers import basic, make_client
from tests.production.support import Serve

pytestmark = pytest.mark.server


@pytest.fixture
def two(settings: Settings) -> Iterator[tuple[Serve, Serve]]:
    """Both call themselves by A's URL, the load balancer's address (tokens name it)."""
    port = free_port()
    shared = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    started: list[Serve] = []
    try:
        started.append(Serve(shared, port=port))
        started.append(Serve(shared))
        for server in started:
            server.wait_until_up()
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def test_a_job_posted_to_one_instance_is_polled_and_downloaded_at_the_other(
    two: tuple[Serve, Serve], settings: Settings, directory: Directory
) -> None:
    a, b = two
    people = [directory.user(login=f"p{n}@example.edu", name=f"Person\t{n}") for n in range(4)]
    credentials = make_client(settings)
    login = a.http.post(
        "/ids/auth/login",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
    )
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}

    posted = a.http.post("/dap/query/canvas/table/users/data", json={"format": "tsv"}, headers=bearer)
    assert posted.status_code in (200, 202), posted.text
    job_id = posted.json()["id"]
    deadline = time.monotonic() + 30
    while (job := b.http.get(f"/dap/job/{job_id}", headers=bearer)).status_code == 202:
        assert time.monotonic() < deadline, job.text
        time.sleep(0.2)
    assert job.status_code == 200 and job.json()["status"] == "complete", job.text
    object_id = job.json()["objects"][0]["id"]

    urls = b.http.post("/dap/object/url", json=[{"id": object_id}], headers=bearer)
    assert urls.status_code == 200, urls.text
    url = urlsplit(urls.json()["urls"][object_id]["url"])
    assert url.netloc == urlsplit(a.url).netloc  # the public URL, which B signed for
    from_b = b.http.get(f"{url.path}?{url.query}")
    from_a = a.http.get(f"{url.path}?{url.query}")  # the signature holds at every instance
    assert from_b.status_code == from_a.status_code == 200
    assert from_a.content == from_b.content
    rows = tsv_rows([gzip.decompress(from_b.content).decode()])
    assert [row["value.name"] for row in rows] == [person.name for person in people]
