"""``lmsauth.serving``'s protocol, driven by hand on a fake transport: it tells the app
(``core.edge.BODY_RECEIVED``) when it holds a request's whole body, and not before, so that
``core.edge`` reads a body without its timer only when ``receive`` cannot wait."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from lmsauth.core.edge import BODY_RECEIVED
from lmsauth.serving import BoundedHttpToolsProtocol


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        info = {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}
        return info.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


FORM = b"grant_type=refresh_token&refresh_token=abc"
HEAD = (
    b"POST /login/oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: " + str(len(FORM)).encode() + b"\r\n\r\n"
)


async def _served(*parts: bytes) -> tuple[list[bool], bytes]:
    """Feeds ``parts`` to the protocol, the app's task running between them; returns whether
    the app saw the flag when it started and once it had read the body, and the body read."""
    seen: list[bool] = []
    body = b""
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal body
        seen.append(bool(scope.get(BODY_RECEIVED)))
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        seen.append(bool(scope.get(BODY_RECEIVED)))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        done.set()

    config = Config(app=app, lifespan="off", log_level="warning")
    protocol = BoundedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)
    try:
        for part in parts:
            protocol.data_received(part)
            for _ in range(5):  # the app's task runs between the parts
                await asyncio.sleep(0)
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        protocol.connection_lost(None)
    return seen, body


async def test_a_body_that_came_with_its_head_is_flagged_before_the_app_reads_it() -> None:
    assert await _served(HEAD + FORM) == ([True, True], FORM)


async def test_a_body_still_arriving_is_flagged_only_once_it_is_whole() -> None:
    assert await _served(HEAD + FORM[:10], FORM[10:]) == ([False, True], FORM)
