"""Load from wrk (pinned to its own core), and the measurement method shared by every contender.

One scenario = preflight request (status and body checked), then ``reps`` x (warm-up of
``warm`` s + measured run of ``duration`` s), waiting for the server to go idle before each.
The median run (by requests/s) gives the figures; errors are summed over every run, warm-ups
included, and the server's RSS is sampled throughout.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import procs

HERE = Path(__file__).resolve().parent
LUA = HERE / "bench.lua"


@dataclass(frozen=True)
class Request:
    """What wrk sends; ``{T}`` in ``body``/``header`` takes successive lines of ``values``."""

    url: str
    method: str = "GET"
    body: str = ""
    content_type: str = "application/x-www-form-urlencoded"
    header: str = ""
    path: str = ""  # path template with {T}; default: the URL's path
    auth: str = ""
    values: Path | None = None
    cycle: bool = True
    expect: int = 200
    plain: bool = False  # no Lua at all (constant GET baselines: wrk's fastest path)

    def env(self) -> dict[str, str]:
        return {
            "BENCH_METHOD": self.method,
            "BENCH_BODY": self.body,
            "BENCH_CONTENT_TYPE": self.content_type,
            "BENCH_HEADER": self.header,
            "BENCH_PATH": self.path,
            "BENCH_AUTH": self.auth,
            "BENCH_VALUES": str(self.values) if self.values else "",
            "BENCH_CYCLE": "1" if self.cycle else "0",
            "BENCH_EXPECT": str(self.expect),
        }

    def first_value(self) -> str:
        if self.values is None:
            return ""
        with self.values.open() as handle:
            return handle.readline().strip()


@dataclass
class Settings:
    warm: float = 3.0
    duration: float = 10.0
    reps: int = 3
    connections: int = 32
    server_cpu: int = 0
    client_cpu: int = 1
    timeout: str = "30s"


@dataclass
class Run:
    rps: float
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    first_bad: str
    server_cpu: float  # cores used by the server's process tree during the run
    db_cpu: float  # cores used by PostgreSQL processes during the run (0 for in-process SQLite)
    peak_rss_kib: int


@dataclass
class Result:
    name: str
    runs: list[Run] = field(default_factory=list)
    warm_errors: int = 0
    preflight: str = ""
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def median(self) -> Run:
        ordered = sorted(self.runs, key=lambda r: r.rps)
        return ordered[len(ordered) // 2]

    def rps_or_zero(self) -> float:
        return self.median().rps if self.runs else 0.0

    @property
    def errors(self) -> int:
        return self.warm_errors + sum(r.errors for r in self.runs)

    @property
    def peak_rss_kib(self) -> int:
        return max((r.peak_rss_kib for r in self.runs), default=0)

    def summary(self) -> dict[str, Any]:
        if not self.runs:
            return {"name": self.name, "notes": self.notes, **self.extra}
        m = self.median()
        return {
            "name": self.name,
            "rps": round(m.rps, 1),
            "rps_runs": [round(r.rps, 1) for r in self.runs],
            "p50_ms": m.p50_ms,
            "p99_ms": m.p99_ms,
            "errors": self.errors,
            "peak_rss_mib": round(self.peak_rss_kib / 1024, 1),
            "server_cpu": m.server_cpu,
            "db_cpu": m.db_cpu,
            "preflight": self.preflight[:200],
            "notes": self.notes,
            **self.extra,
            "runs": [asdict(r) for r in self.runs],
        }


class BenchError(RuntimeError):
    pass


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """wrk never follows a redirect; nor does the preflight (a 302 is the answer to check)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


def preflight(req: Request, expect_text: str, value: str | None = None) -> str:
    """One request exactly like wrk's first; it must answer ``req.expect`` with ``expect_text``."""
    v = req.first_value() if value is None else value
    headers = {"Accept": "application/json"}
    data = None
    if req.method == "POST":
        headers["Content-Type"] = req.content_type
        data = req.body.replace("{T}", v).encode()
    if req.header:
        name, _, header_value = req.header.partition(":")
        headers[name.strip()] = header_value.strip().replace("{T}", v)
    if req.auth:
        headers["Authorization"] = "Basic " + base64.b64encode(req.auth.encode()).decode()
    url = req.url
    if req.path:
        parts = urllib.parse.urlsplit(req.url)
        url = f"{parts.scheme}://{parts.netloc}{req.path.replace('{T}', v)}"
    request = urllib.request.Request(url, data=data, headers=headers, method=req.method)
    try:
        with _NO_REDIRECTS.open(request, timeout=60) as response:
            status: int = response.status
            text = bytes(response.read()).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, bytes(exc.read()).decode(errors="replace")
    if status != req.expect or expect_text not in text:
        raise BenchError(f"preflight {req.method} {req.url}: HTTP {status}: {text[:400]}")
    return text


def _wrk(
    req: Request,
    seconds: float,
    cfg: Settings,
    out: Path,
    *,
    connections: int | None = None,
    delay_ms: float = 0,
    max_requests: int = 0,
) -> dict[str, Any]:
    cmd = [
        "taskset",
        "-c",
        str(cfg.client_cpu),
        "wrk",
        "-t1",
        f"-c{connections or cfg.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        cfg.timeout,
        "--latency",
    ]
    if not req.plain:
        cmd += ["-s", str(LUA)]
    cmd.append(req.url)
    env = {
        **os.environ,
        **req.env(),
        "BENCH_DELAY_MS": f"{delay_ms:.3f}",
        "BENCH_MAX_REQUESTS": str(max_requests),
    }
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False)
    out.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr[-400:]}")
    return _parse(done.stdout)


def _parse(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            data: dict[str, Any] = json.loads(line[len("BENCH_JSON ") :])
            return data
    # plain wrk (no Lua): read its text report
    data = {"bad_status": 0, "exhausted": 0, "first_bad": ""}
    for line in text.splitlines():
        parts = line.split()
        if line.strip().startswith(("50%", "90%", "99%")):
            data[f"lat_p{parts[0][:-1]}_us"] = _to_us(parts[1])
        elif "requests in" in line:
            data["requests"] = int(parts[0])
            data["duration_us"] = _to_us(parts[3].rstrip(","))
        elif line.startswith("  Non-2xx or 3xx responses:"):
            data["status_errors"] = int(parts[-1])
        elif line.startswith("  Socket errors:"):
            nums = [int(p.rstrip(",")) for p in parts if p.rstrip(",").isdigit()]
            data.update(
                zip(("connect_errors", "read_errors", "write_errors", "timeouts"), nums, strict=False)
            )
        elif line.strip().startswith("Latency") and len(parts) >= 5:
            data["lat_max_us"] = _to_us(parts[3])
    data.setdefault("lat_p50_us", 0)
    return data


def _to_us(text: str) -> float:
    for suffix, scale in (("us", 1.0), ("ms", 1e3), ("s", 1e6), ("m", 6e7)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


_ERROR_KEYS = ("bad_status", "exhausted", "connect_errors", "read_errors", "write_errors", "timeouts")


def _errors(data: dict[str, Any]) -> dict[str, int]:
    detail = {k: int(data.get(k, 0)) for k in _ERROR_KEYS}
    if "bad_status" not in data or not data.get("responses_seen"):
        # without the Lua response hook, wrk's own non-2xx/3xx count is the status error count
        detail["bad_status"] = max(detail["bad_status"], int(data.get("status_errors", 0)))
    return detail


def run_once(
    req: Request,
    seconds: float,
    cfg: Settings,
    out: Path,
    server: procs.Server,
    *,
    connections: int | None = None,
    delay_ms: float = 0,
    max_requests: int = 0,
    watch_db: bool = False,
) -> Run:
    pids = server.pids()
    d0 = procs.ticks_by_pid(procs.pids_by_name("postgres")) if watch_db else {}
    t0, w0 = procs.cpu_ticks(pids), time.monotonic()
    with procs.RssSampler(server.pid) as rss:
        data = _wrk(
            req, seconds, cfg, out, connections=connections, delay_ms=delay_ms, max_requests=max_requests
        )
    wall = time.monotonic() - w0
    t1 = procs.cpu_ticks(server.pids())
    db_ticks = procs.ticks_since(d0, procs.pids_by_name("postgres")) if watch_db else 0
    detail = _errors(data)
    duration = max(float(data.get("duration_us", 0)) / 1e6, 1e-9)
    return Run(
        rps=int(data["requests"]) / duration,
        requests=int(data["requests"]),
        duration_s=round(duration, 3),
        p50_ms=round(float(data.get("lat_p50_us", 0)) / 1e3, 3),
        p90_ms=round(float(data.get("lat_p90_us", 0)) / 1e3, 3),
        p99_ms=round(float(data.get("lat_p99_us", 0)) / 1e3, 3),
        max_ms=round(float(data.get("lat_max_us", 0)) / 1e3, 3),
        errors=sum(detail.values()),
        error_detail=detail,
        first_bad=str(data.get("first_bad", "")),
        server_cpu=round((t1 - t0) / procs.CLK_TCK / wall, 3),
        db_cpu=round(db_ticks / procs.CLK_TCK / wall, 3),
        peak_rss_kib=rss.peak_kib,
    )


def _profilers(name: str, server: procs.Server, cfg: Settings) -> list[subprocess.Popen[bytes]]:
    """Profilers of the server during the first measured run of each scenario, on the load
    generator's core (a profiled run pays for them, so its figures are not the benchmark's):
    with ``LMSAUTH_BENCH_PROFILE=DIR``, py-spy (200 Hz, Python's frames) into ``DIR/NAME.txt``
    (collapsed stacks; ``python -m benchmarks.profile_summary`` reads them); with
    ``LMSAUTH_BENCH_PERF=DIR``, ``perf record -e cpu-clock -g`` (1 kHz, every thread's CPU,
    the kernel's included) into ``DIR/NAME.perf`` (``python -m benchmarks.perf_summary``)."""
    seconds = str(max(1, int(cfg.duration) - 2))
    pinned = ["taskset", "-c", str(cfg.client_cpu)]
    commands: list[list[str]] = []
    if folder := os.environ.get("LMSAUTH_BENCH_PROFILE"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        spy = ["py-spy", "record", "--nonblocking", "-r", "200", "-d", seconds, "-f", "raw"]
        commands.append([*pinned, *spy, "-o", f"{folder}/{name}.txt", "-p", str(server.pid)])
    if folder := os.environ.get("LMSAUTH_BENCH_PERF"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        perf = ["perf", "record", "-e", "cpu-clock", "-F", "1000", "-g", "-p", str(server.pid)]
        commands.append([*pinned, *perf, "-o", f"{folder}/{name}.perf", "--", "sleep", seconds])
    quiet = subprocess.DEVNULL
    return [subprocess.Popen(command, stdout=quiet, stderr=quiet) for command in commands]


def measure(
    name: str,
    server: procs.Server,
    cfg: Settings,
    raw_dir: Path,
    request_for_rep: Callable[[int], Request],
    *,
    expect_text: str,
    watch_db: bool = False,
    log: Callable[[str], None] = print,
) -> Result:
    """The method: preflight, then ``reps`` x (idle, warm-up, idle, measured run)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    result = Result(name)
    for rep in range(1, cfg.reps + 1):
        req = warm_req = request_for_rep(rep)
        if rep == 1:
            result.preflight = preflight(req, expect_text)
            (raw_dir / f"{name}.preflight.body").write_text(result.preflight)
        if req.values is not None and not req.cycle:
            # Single-use values (codes): the preflight spent the first; the warm-up and the
            # measured run get disjoint shares of the rest, in proportion to their durations.
            lines = req.values.read_text().splitlines()[1 if rep == 1 else 0 :]
            cut = int(len(lines) * cfg.warm / (cfg.warm + cfg.duration))
            warm_file = req.values.with_suffix(".warm.txt")
            warm_file.write_text("\n".join(lines[:cut]) + "\n")
            req.values.write_text("\n".join(lines[cut:]) + "\n")
            warm_req = replace(req, values=warm_file)
        procs.wait_idle(server.pids())
        if cfg.warm > 0:
            warm = run_once(warm_req, cfg.warm, cfg, raw_dir / f"{name}.{rep}.warm.txt", server)
            result.warm_errors += warm.errors
        procs.wait_idle(server.pids())
        if not server.alive():
            raise BenchError(f"{name}: server died\n{server.log_tail()}")
        profilers = _profilers(name, server, cfg) if rep == 1 else []
        run = run_once(req, cfg.duration, cfg, raw_dir / f"{name}.{rep}.txt", server, watch_db=watch_db)
        for profiler in profilers:
            profiler.wait(timeout=60)
        result.runs.append(run)
        log(
            f"  {name} run {rep}: {run.rps:,.0f} req/s p50 {run.p50_ms} ms p99 {run.p99_ms} ms "
            f"errors {run.errors} cpu {run.server_cpu:.2f}+db {run.db_cpu:.2f} "
            f"rss {run.peak_rss_kib // 1024} MiB"
            + (f" first error: {run.first_bad[:120]}" if run.first_bad else "")
        )
    return result


def at_rate(
    name: str,
    server: procs.Server,
    cfg: Settings,
    raw_dir: Path,
    req: Request | Callable[[int], Request],
    target_rps: float,
    *,
    log: Callable[[str], None] = print,
) -> Result:
    """Open-loop-ish load at ``target_rps``: each connection pauses between its requests.
    ``req`` may be a function of the run (0: the probe, 1: the measured run) for requests
    that cannot be sent twice (single-use codes).

    wrk 4 has no constant-rate mode (wrk2 does); a per-connection pause of
    ``connections / rate`` minus the observed service time approximates it. The achieved rate
    is reported next to the latencies.
    """
    conns = cfg.connections
    pause_ms = conns * 1000 / target_rps
    result = Result(name, extra={"target_rps": round(target_rps, 1), "connections": conns})
    procs.wait_idle(server.pids())
    request_for = req if callable(req) else (lambda run: req if run == 0 else replace(req))
    probe = run_once(
        request_for(0),
        max(2.0, cfg.warm),
        cfg,
        raw_dir / f"{name}.probe.txt",
        server,
        connections=conns,
        delay_ms=pause_ms,
    )
    result.warm_errors += probe.errors
    # wrk's delay() is in whole ms; correct the pause by the time each loop really took.
    loop_ms = conns * 1000 / max(probe.rps, 1)
    pause_ms = max(0.5 * pause_ms, pause_ms - (loop_ms - pause_ms))
    procs.wait_idle(server.pids())
    run = run_once(
        request_for(1),
        cfg.duration,
        cfg,
        raw_dir / f"{name}.txt",
        server,
        connections=conns,
        delay_ms=pause_ms,
    )
    result.runs.append(run)
    result.extra["pause_ms"] = round(pause_ms, 2)
    log(
        f"  {name}: target {target_rps:,.0f} achieved {run.rps:,.0f} req/s "
        f"p50 {run.p50_ms} ms p99 {run.p99_ms} ms errors {run.errors}"
    )
    return result


def count_run(
    name: str,
    server: procs.Server,
    cfg: Settings,
    raw_dir: Path,
    req: Request,
    max_requests: int,
    seconds: float,
) -> Run:
    """Send (about) ``max_requests`` requests as fast as the server answers them, for at most
    ``seconds`` (the result's ``requests`` says how many were answered).

    wrk always waits out its whole ``-d`` even when the Lua script stops early, so the load is
    sent in chunks of at most 30 s and the count is checked between chunks.
    """
    deadline = time.monotonic() + seconds
    runs: list[Run] = []
    done = 0
    while done < max_requests and time.monotonic() < deadline - 1:
        chunk = min(30.0, deadline - time.monotonic())
        run = run_once(
            req, chunk, cfg, raw_dir / f"{name}.{len(runs) + 1}.txt", server, max_requests=max_requests - done
        )
        runs.append(run)
        done += run.requests
    duration = sum(r.duration_s for r in runs) or 1e-9
    return Run(
        rps=done / duration,
        requests=done,
        duration_s=round(duration, 3),
        p50_ms=median([r.p50_ms for r in runs]),
        p90_ms=median([r.p90_ms for r in runs]),
        p99_ms=max((r.p99_ms for r in runs), default=0.0),
        max_ms=max((r.max_ms for r in runs), default=0.0),
        errors=sum(r.errors for r in runs),
        error_detail={k: sum(r.error_detail.get(k, 0) for r in runs) for k in _ERROR_KEYS},
        first_bad=next((r.first_bad for r in runs if r.first_bad), ""),
        server_cpu=median([r.server_cpu for r in runs]),
        db_cpu=median([r.db_cpu for r in runs]),
        peak_rss_kib=max((r.peak_rss_kib for r in runs), default=0),
    )


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0
