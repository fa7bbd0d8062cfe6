"""Where a process's CPU went, kernel included, from a ``perf record -g`` profile.

    python -m benchmarks.perf_summary PROFILE.perf [TOP]

py-spy (``benchmarks.profile_summary``) sees Python's frames only, and counts a thread that
waits in a system call such as ``fdatasync`` as busy. ``perf record -e cpu-clock`` samples the
CPU itself, the kernel's work included, so it shows what py-spy cannot: the system calls'
share of a request. This prints three of ``perf report``'s own tables, cut to their first
lines: the shares by thread, by library (``[kernel.kallsyms]``, libpython, libsqlite3 ...), and
the inclusive shares of the kernel entry points a request goes through (the socket's writes and
reads, the database files' writes, reads, fsyncs and locks, the event loop's wait). Nothing is
computed here: each line is perf's, chosen by name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# Kernel functions that name what a request asked of the kernel (inclusive shares). Socket
# writes include loopback's delivery to the client (softirq, charged to the sender's CPU).
KERNEL_ENTRIES = (
    "tcp_sendmsg",
    "tcp_recvmsg",
    "__x64_sys_pwrite64",
    "__x64_sys_pread64",
    "__x64_sys_fdatasync",
    "__x64_sys_fsync",
    "__x64_sys_fcntl",
    "__x64_sys_getrandom",
    "__x64_sys_futex",
    "do_epoll_wait",
)


def _report(profile: Path, *options: str) -> list[str]:
    done = subprocess.run(
        ["perf", "report", "-i", str(profile), "--stdio", "-g", "none", *options],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line.strip() and not line.startswith("#")]


def summary(profile: Path, top: int = 8) -> str:
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed (Debian: linux-perf)")
    lines = ["by thread:", *_report(profile, "--no-children", "--sort", "pid")[:top]]
    lines += ["by library:", *_report(profile, "--no-children", "--sort", "dso")[:top]]
    entries = _report(profile, "--children", "--sort", "sym")
    lines.append("kernel entry points (inclusive):")
    lines += [line for line in entries if line.split()[-1] in KERNEL_ENTRIES]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 8))
