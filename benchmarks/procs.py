"""Processes under test: start one pinned to a core, watch its CPU and memory, stop it by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (a gunicorn master and its workers, npm and node...)."""
    tree = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def ticks_by_pid(pids: list[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    return out


def cpu_ticks(pids: list[int]) -> int:
    return sum(ticks_by_pid(pids).values())


def ticks_since(before: dict[int, int], pids: list[int]) -> int:
    """CPU ticks used since ``before`` by ``pids`` (processes born meanwhile count in full;
    ones that exited meanwhile are lost, so this errs low)."""
    now = ticks_by_pid(pids)
    return sum(max(0, t - before.get(pid, 0)) for pid, t in now.items())


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (so that concurrent runs, e.g. a
    smoke test in someone else's pytest, do not meet on a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pids_by_name(name: str) -> list[int]:
    """Processes whose command name is ``name`` (read-only: used to account PostgreSQL's CPU)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                continue
    return found


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        return tree_pids(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str, cmd: list[str], *, cwd: Path, env: dict[str, str], log_dir: Path, cpu: int | str
) -> Server:
    """Start ``cmd`` pinned to ``cpu`` (a core, or a ``taskset`` list such as ``"0,1"``)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *cmd],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, proc, log_path)


def stop(server: Server, timeout: float = 10.0) -> None:
    """SIGTERM the server's own process group (started with a new session), then SIGKILL."""
    if server.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=timeout)


def wait_http(url: str, server: Server | None = None, timeout: float = 60.0) -> None:
    """Until anything (any status) answers at ``url``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and not server.alive():
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def wait_idle(pids: list[int], timeout: float = 120.0) -> bool:
    """Until the processes use under ~4 % of a core over 0.5 s (queued work has drained)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = cpu_ticks(pids)
        time.sleep(0.5)
        if cpu_ticks(pids) - a <= 2:
            return True
    return False


@dataclass
class RssSampler:
    """Samples the summed RSS of a process tree in a thread; ``peak_kib`` is the maximum seen."""

    root: int
    interval: float = 0.2
    peak_kib: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        self.peak_kib = max(self.peak_kib, rss_kib(tree_pids(self.root)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
