"""``lmsauth serve`` against slow and greedy clients, over real sockets: a body declared and
not sent gets 408 and a closed connection, a head that does not arrive in time or is too large
ends the connection, and requests past the concurrency bound get uvicorn's 503.

The server's bounds are set small (1 s) so the tests are quick; every wait on the server is
bounded by a generous socket timeout, never asserted against a tight threshold.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.core.test_cli import Server

pytestmark = pytest.mark.server

PATIENCE = 20.0  # how long a test waits for the server to act on a 1 s bound
LIMITS = {
    "LMSAUTH_HEADER_TIMEOUT_SECONDS": "1",
    "LMSAUTH_BODY_TIMEOUT_SECONDS": "1",
    "LMSAUTH_MAX_HEADER_BYTES": "4096",
    "LMSAUTH_KEEP_ALIVE_SECONDS": "60",
    "LMSAUTH_MAX_CONCURRENCY": "3",
    "LMSAUTH_MAX_BODY_BYTES": "2048",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("limits"), env=LIMITS)
    try:
        running.wait_until_up()
        yield running
    finally:
        running.stop()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (``socket.timeout`` if it
    does not within ``PATIENCE``)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def head(path: str, *lines: str) -> bytes:
    return "\r\n".join([path, "Host: 127.0.0.1", *lines, "", ""]).encode()


def read_response(sock: socket.socket) -> bytes:
    """One complete response with a ``content-length`` body, on a connection left open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"!closed"
        assert not data.endswith(b"!closed"), data
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.lower().split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return top


@pytest.mark.parametrize("path", ["/login/oauth2/token", "/commons/api/sessions"])
def test_a_body_declared_and_not_sent_gets_408_and_the_connection_closes(server: Server, path: str) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(
            head(
                f"POST {path} HTTP/1.1",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 100",
            )
            + b"grant_type"  # 10 of the 100 bytes
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"\r\nconnection: close\r\n" in answer.lower()
    assert answer.endswith(b"Request body not received in time")
    assert time.monotonic() - started >= 0.9  # the bound was waited out, not skipped


def test_a_body_in_two_parts_is_read_whole(server: Server) -> None:
    """The server says when it holds the whole body (``core.edge.BODY_RECEIVED``), and only
    then is the body read without the bound's timer: a body whose second half comes later is
    waited for, and answered as a whole form (a 401 for the unknown client, not a 400 for a
    truncated body nor a 408)."""
    form = b"grant_type=authorization_code&client_id=1&client_secret=x&code=abc&redirect_uri=urn%3Aietf"
    with connect(server) as sock:
        sock.sendall(
            head(
                "POST /login/oauth2/token HTTP/1.1",
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(form)}",
                "Connection: close",
            )
            + form[:40]
        )
        time.sleep(0.3)  # pacing the client's second half, well inside the 1 s bound
        sock.sendall(form[40:])
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]
    assert b'"error":"invalid_client"' in answer


def test_a_chunked_body_over_the_bound_sent_whole_is_refused(server: Server) -> None:
    """A body with no declared length is counted as it is read, also when the server already
    holds all of it: the token endpoint refuses it in its own format (400 invalid_request)."""
    chunk = b"a=" + b"x" * 3000
    with connect(server) as sock:
        sock.sendall(
            head(
                "POST /login/oauth2/token HTTP/1.1",
                "Content-Type: application/x-www-form-urlencoded",
                "Transfer-Encoding: chunked",
                "Connection: close",
            )
            + f"{len(chunk):x}\r\n".encode()
            + chunk
            + b"\r\n0\r\n\r\n"
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert answer.endswith(b'{"error":"invalid_request","error_description":"request body too large"}')


def test_a_body_the_app_never_reads_does_not_keep_the_connection(server: Server) -> None:
    """The JWKS answers without reading a body; the rest of a declared body must not hold the
    connection open (uvicorn would keep reading it, each byte restarting its keep-alive)."""
    with connect(server) as sock:
        sock.sendall(head("GET /login/oauth2/jwks HTTP/1.1", "Content-Length: 100") + b"0123456789")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b"\r\nconnection: close\r\n" in answer.lower()


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock) == b""


def test_a_head_trickled_slowly_is_closed_without_an_answer(server: Server) -> None:
    closed = threading.Event()
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        def trickle() -> None:  # a header byte every 0.2 s: never finishes the head
            for _ in range(int(PATIENCE / 0.2)):
                if closed.is_set():
                    return
                try:
                    sock.sendall(b"X")
                except OSError:
                    return
                time.sleep(0.2)  # pacing the slow client, not waiting on the server

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            try:
                received = read_until_closed(sock)
            except ConnectionResetError:
                # The server closed while a trickled byte was on its way: the kernel answers
                # that byte with a reset. Closed either way, and no answer was read before it.
                received = b""
            assert received == b""
        finally:
            closed.set()
            sender.join(timeout=5)


def test_a_head_arriving_in_time_on_a_kept_alive_connection_is_answered(server: Server) -> None:
    """The head timer restarts for each request: a connection is not closed for its age."""
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(head("GET /healthz HTTP/1.1"))
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.6)  # idle between requests; together longer than the 1 s head bound


def test_a_head_over_the_size_bound_gets_400_and_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(head("GET /healthz HTTP/1.1", "X-Padding: " + "a" * 5000))
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_requests_past_the_concurrency_bound_get_503(server: Server) -> None:
    held = [connect(server), connect(server)]
    try:
        for sock in held:  # two kept-alive connections, plus the third below: the bound (3)
            sock.sendall(head("GET /healthz HTTP/1.1"))
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        with connect(server) as sock:
            sock.sendall(head("GET /healthz HTTP/1.1"))
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert answer.endswith(b"Service Unavailable")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + PATIENCE
    while httpx.get(f"{server.url}/healthz", timeout=PATIENCE).status_code != 200:
        assert time.monotonic() < deadline, "the server did not recover below its bound"
        time.sleep(0.1)  # polling for the server to see the closed connections
