"""Shares of a py-spy profile (``-f raw``: one collapsed stack and its count per line).

    python -m benchmarks.profile_summary PROFILE.txt [TOP]

Prints the sample count, then the frames with the largest *own* share (the sampled frame
itself) and the largest *inclusive* share (anywhere on the stack, counted once per sample):
the two lists ANALYSIS.md quotes. Written by hand: py-spy's own outputs are a flame graph
(SVG) and speedscope JSON, neither of which gives these two lists as text.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def summary(path: Path, top: int = 15) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"samples {total}"]
    lines += [f"{100 * n / total:5.1f}% own  {frame}" for frame, n in own.most_common(top)]
    lines += [f"{100 * n / total:5.1f}% incl {frame}" for frame, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 15))
