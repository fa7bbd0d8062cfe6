"""Identity clients made straight in a test's database, and the login request the dap client sends."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from lmsauth.core.db import Database
from lmsauth.identity import admin
from lmsauth.settings import Settings
from tests.conftest import run


@dataclass
class Credentials:
    client_id: str
    client_secret: str


async def _in_session(settings: Settings, work: Any) -> Any:
    db = Database(settings.resolved_database_url)
    try:
        async with db.session(write=True) as session:
            return await work(session)
    finally:
        await db.dispose()


def make_client(settings: Settings, **options: Any) -> Credentials:
    options = {"name": "Test institution key", "principal": "inst-1", **options}

    async def work(session: Any) -> Credentials:
        client, secret = await admin.create_client(session, **options)
        return Credentials(client.client_id, secret)

    result: Credentials = run(_in_session(settings, work))
    return result


def revoke(settings: Settings, client_id: str) -> None:
    async def work(session: Any) -> None:
        await admin.revoke_client(session, client_id)

    run(_in_session(settings, work))


def basic(client_id: str, secret: str) -> str:
    """``Authorization`` as the dap client builds it (spec A1): UTF-8, then base64."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def login(client: Any, credentials: Credentials) -> Any:
    """The dap client's login request, byte for byte in what matters (spec A1)."""
    return client.post(
        "/ids/auth/login",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
    )


def access_token(client: Any, credentials: Credentials) -> str:
    response = login(client, credentials)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
