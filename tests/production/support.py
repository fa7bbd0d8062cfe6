"""What the production tests share: ``lmsauth serve`` as a subprocess over the test's database
and Redis, the CLI with the same environment, and a TCP proxy that plays a backend going
down, hanging and coming back (the machine's own PostgreSQL and Redis are never touched)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from lmsauth.settings import Settings
from lmsauth.testing import ServeProcess
from tests.conftest import free_port

LMSAUTH = shutil.which("lmsauth", path=str(Path(sys.executable).parent)) or "lmsauth"


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment without LMSAUTH_*, then exactly the test's backends."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LMSAUTH_")}
    env.update(
        LMSAUTH_DATA_DIR=str(settings.data_dir),
        LMSAUTH_SECRET_KEY=settings.resolved_secret_key,
        LMSAUTH_PUBLIC_URL=settings.public_url,
        LMSAUTH_LOG_LEVEL="warning",
        LMSAUTH_CLEANUP_INTERVAL_SECONDS="3600",
    )
    if settings.database_url:
        env["LMSAUTH_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["LMSAUTH_REDIS_URL"] = settings.redis_url
        env["LMSAUTH_REDIS_NAMESPACE"] = settings.redis_namespace
    env.update(extra)
    return env


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``lmsauth ARGS`` as an operator runs it beside the servers (same settings)."""
    done = subprocess.run(
        [LMSAUTH, *args], env=environment(settings), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


class Serve(ServeProcess):
    """``lmsauth serve`` on a free port over the test's backends (``lmsauth.testing``'s one
    subprocess helper), with an HTTP client of its own."""

    def __init__(
        self, settings: Settings, port: int | None = None, args: tuple[str, ...] = (), **extra_env: str
    ) -> None:
        super().__init__(args, environment(settings, **extra_env), port or free_port())
        self.http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=15)

    @property
    def stderr(self) -> str:
        return self.output

    def wait_until_up(self, timeout: float = 45) -> None:
        self.wait_until_answers("/readyz", timeout)

    def stop(self, timeout: float = 15) -> int:
        self.http.close()
        return super().stop(timeout)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        super().kill(sig)
        self.http.close()


class Proxy:
    """A TCP proxy in front of a backend, to play its outages:

    - ``down()``: existing connections are cut and new ones refused (a restart, a crash);
    - ``hang()``: connections are accepted and nothing is forwarded either way (a network
      partition or a frozen server: only timeouts end the wait);
    - ``up()``: forwarding again, on the same port.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._hanging = False
        self.up()

    def up(self) -> None:
        self._hanging = False
        if self._listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        self._hanging = False
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() and stops listening
            listener.close()
        self._cut_all()

    def hang(self) -> None:
        self._hanging = True
        self.up()
        self._hanging = True

    def close(self) -> None:
        self.down()

    def _cut_all(self) -> None:
        with self._lock:
            found, self._sockets = self._sockets, set()
        for sock in found:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return  # closed by down()
            self._track(downstream)
            if self._hanging:
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            self._track(upstream)
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self._hanging:
                    continue  # swallowed: the peer waits for an answer that never comes
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def through(proxy: Proxy, url: str) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    from sqlalchemy.engine import make_url

    if url.startswith("redis"):
        rest = url.split("://", 1)[1]
        path = rest.split("/", 1)[1] if "/" in rest else "0"
        return f"redis://127.0.0.1:{proxy.port}/{path}"
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def target_of(url: str, default_port: int) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("+asyncpg", ""))
    return parts.hostname or "127.0.0.1", parts.port or default_port
