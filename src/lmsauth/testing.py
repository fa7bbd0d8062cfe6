"""``lmsauth.testing``: a pytest plugin that gives a test suite its own lmsauth emulator.

Installed with lmsauth (entry point ``pytest11``), it adds the fixture ``lmsauth_emulator``: a
``lmsauth serve --emulator`` process on a free port, with its own data folder, loaded from a
seed file (the ini option ``lmsauth_seed``, else the built-in demo seed). The process is shared
by the tests of one pytest process (one per xdist worker) and reset after every test, so each
test starts from the seeded state, on real time, with no faults and an empty traffic log.

The emulator is a separate process, as it is for any user's project: moving its clock moves
the server's time, never the test's. A client that checks expiry itself against ``time.time``
(requests-oauthlib's ``expires_at``) needs ``offset_seconds`` to follow it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Emulator", "EmulatorError", "SeededKey", "SeededUser", "ServeProcess", "start_emulator"]

START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0


class EmulatorError(RuntimeError):
    """The emulator refused a control request, or did not start."""


@dataclass(frozen=True)
class SeededKey:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]


@dataclass(frozen=True)
class SeededUser:
    login: str
    password: str
    name: str


def _seeded(text: str) -> tuple[list[SeededKey], list[SeededUser]]:
    data = tomllib.loads(text)
    keys = [
        SeededKey(
            str(item["client_id"]),
            str(item["client_secret"]),
            str(item.get("name", "")),
            [str(uri) for uri in item.get("redirect_uris", [])],
        )
        for item in data.get("developer_keys", [])
        if "client_id" in item and "client_secret" in item
    ]
    users = [SeededUser(str(u["login"]), str(u["password"]), str(u["name"])) for u in data.get("users", [])]
    return keys, users


def free_port() -> int:
    """A loopback port nothing listens on now (another process may still take it first)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    """``lmsauth serve`` as a subprocess on a loopback port, its output (stdout and stderr, in
    order) collected as it arrives. The emulator fixture starts its server with it, and so do
    lmsauth's own tests of the served process (the CLI, two instances, outages, the docs)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "lmsauth.cli", "serve", "--port", str(self.port), *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until(self, ready: Callable[[], object], timeout: float = 45) -> None:
        """Poll ``ready`` (which may raise ``OSError`` while nothing listens) until it answers
        something true; an exited process or the timeout raises, with the server's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise EmulatorError(f"lmsauth serve exited with {self.process.returncode}:\n{self.output}")
            with contextlib.suppress(OSError, EmulatorError):
                if ready():
                    return
            time.sleep(0.1)  # polling for start-up, not waiting out an expiry
        raise EmulatorError(f"lmsauth serve did not become ready within {timeout} s:\n{self.output}")

    def wait_until_answers(self, path: str = "/readyz", timeout: float = 45) -> None:
        """Until ``GET path`` answers 200."""

        def answers() -> bool:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)

        self.wait_until(answers, timeout)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM (a clean shutdown), then SIGKILL past ``timeout``; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        return code

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """End the process with ``sig`` (default SIGKILL: a crash, nothing cleaned up) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=15)
        self._reader.join(timeout=5)


@dataclass
class Emulator:
    """A running emulator: its base URL, the seeded credentials, and the control helpers."""

    url: str
    data_dir: Path
    developer_keys: list[SeededKey]
    users: list[SeededUser]
    process: ServeProcess | None = None
    offset_seconds: float = 0.0
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def developer_key(self) -> SeededKey:
        """The seed's first developer key that names its ``client_id`` and ``client_secret``."""
        if not self.developer_keys:
            raise EmulatorError("the seed names no developer key with client_id and client_secret")
        return self.developer_keys[0]

    @property
    def user(self) -> SeededUser:
        """The seed's first user."""
        if not self.users:
            raise EmulatorError("the seed names no user")
        return self.users[0]

    # -- the control API -------------------------------------------------------------------

    def _call(self, method: str, path: str, data: Any = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = urllib.request.Request(f"{self.url}/_emulator{path}", body, headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise EmulatorError(f"{method} /_emulator{path}: {exc.code} {detail}") from exc
        return json.loads(raw) if raw else None

    def _clock(self, reply: dict[str, Any]) -> dict[str, Any]:
        self.offset_seconds = float(reply["offset_seconds"])
        return reply

    def clock(self) -> dict[str, Any]:
        """``{"now", "timestamp", "offset_seconds", "real_time"}`` of the server."""
        return self._clock(self._call("GET", "/clock"))

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the server's clock forward (or back, with a negative number)."""
        return self._clock(self._call("POST", "/clock", {"advance": seconds}))

    def set_clock(self, moment: datetime | str) -> dict[str, Any]:
        value = moment.isoformat() if isinstance(moment, datetime) else moment
        return self._clock(self._call("POST", "/clock", {"set": value}))

    def reset_clock(self) -> dict[str, Any]:
        """Back to real time."""
        return self._clock(self._call("DELETE", "/clock"))

    def time(self) -> float:
        """The server's ``time.time()``, as far as this process knows the offset."""
        return time.time() + self.offset_seconds

    def inject_fault(
        self,
        path: str,
        *,
        status: int | None = None,
        method: str = "*",
        count: int | None = None,
        duration: float | None = None,
        retry_after: int | None = None,
        delay: float | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Answer requests matching ``path`` (``*`` matches anything) with ``status`` in the real
        service's error format, and/or after ``delay`` seconds; for ``count`` requests, for
        ``duration`` seconds of emulator time, or until cleared."""
        data = {
            "path": path,
            "method": method,
            "status": status,
            "count": count,
            "duration": duration,
            "retry_after": retry_after,
            "delay": delay,
            "message": message,
        }
        given = {name: value for name, value in data.items() if value is not None}
        fault: dict[str, Any] = self._call("POST", "/faults", given)
        return fault

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/faults")["faults"]
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def requests(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` requests the server answered, newest first, secrets masked."""
        result: list[dict[str, Any]] = self._call("GET", f"/requests?limit={limit}")["requests"]
        return result

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def tokens(self) -> dict[str, Any]:
        """Live tokens, codes and sessions with their owners and expiries (never secrets)."""
        result: dict[str, Any] = self._call("GET", "/tokens")
        return result

    def flow(self, client_id: str | None = None, login: str | None = None) -> dict[str, Any]:
        """Run the authorization-code flow for a seeded key and user: steps, token, decoded."""
        result: dict[str, Any] = self._call("POST", "/flow", {"client_id": client_id, "login": login})
        return result

    def authorize(self, client_id: str | None = None, login: str | None = None) -> dict[str, Any]:
        """The token response of an authorization-code flow (default: first key, first user)."""
        token: dict[str, Any] = self.flow(client_id, login)["token"]
        return token

    def load_seed(self, toml: str) -> dict[str, Any]:
        """Load more seed data; it becomes part of the state ``reset`` returns to."""
        result: dict[str, Any] = self._call("POST", "/seed", {"toml": toml})
        return result

    def reset(self) -> None:
        """The seeded state again: database, real time, no faults, an empty traffic log."""
        self._call("POST", "/reset")
        self.offset_seconds = 0.0

    def cli(self, *args: str) -> Any:
        """Run ``lmsauth ARGS`` against this emulator's database (e.g. ``identity-client
        create``); returns the JSON it prints when ``--json`` is given, else its stdout."""
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "lmsauth.cli", *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=REQUEST_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise EmulatorError(f"lmsauth {' '.join(args)} failed: {result.stderr.strip()}")
        return json.loads(result.stdout) if "--json" in args else result.stdout

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.stop(timeout=10)
        self.process = None


def start_emulator(data_dir: Path, seed: Path | None = None) -> Emulator:
    """Start ``lmsauth serve --emulator`` on a free loopback port; ``seed`` None: the demo seed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    demo = resources.files("lmsauth").joinpath("demo_seed.toml")
    text = seed.read_text() if seed is not None else demo.read_text()
    keys, users = _seeded(text)
    last_error = ""
    for _attempt in range(3):  # another process may take the free port before the server does
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {name: value for name, value in os.environ.items() if not name.startswith("LMSAUTH_")}
        env.update(LMSAUTH_DATA_DIR=str(data_dir), LMSAUTH_PUBLIC_URL=url, LMSAUTH_LOG_LEVEL="warning")
        args = ["--emulator", *(["--seed", str(seed.resolve())] if seed is not None else ["--demo"])]
        process = ServeProcess(args, env, port)
        emulator = Emulator(url, data_dir, keys, users, process, _env=env)
        try:
            process.wait_until(emulator.clock, START_TIMEOUT)
            return emulator
        except EmulatorError as failed:
            emulator.stop()
            last_error = str(failed)[-2000:]
        if "address already in use" not in last_error.lower():
            break
    raise EmulatorError(f"the lmsauth emulator did not start:\n{last_error}")


# -- the pytest plugin ------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("lmsauth_seed", "seed file (TOML) for the lmsauth_emulator fixture; default: demo seed")


@pytest.fixture(scope="session")
def lmsauth_seed(pytestconfig: pytest.Config) -> Path | None:
    """The seed file the emulator loads: the ini option ``lmsauth_seed`` (relative to the
    rootdir), else None for lmsauth's demo seed. Override this fixture to choose per suite."""
    value = str(pytestconfig.getini("lmsauth_seed") or "")
    return pytestconfig.rootpath / value if value else None


@pytest.fixture(scope="session")
def lmsauth_emulator_process(
    tmp_path_factory: pytest.TempPathFactory, lmsauth_seed: Path | None
) -> Iterator[Emulator]:
    """The emulator process of this pytest process (of this xdist worker), started on first use."""
    emulator = start_emulator(tmp_path_factory.mktemp("lmsauth-emulator"), lmsauth_seed)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def lmsauth_emulator(lmsauth_emulator_process: Emulator) -> Iterator[Emulator]:
    """A running lmsauth emulator in its seeded state; reset again after the test."""
    try:
        yield lmsauth_emulator_process
    finally:
        lmsauth_emulator_process.reset()
