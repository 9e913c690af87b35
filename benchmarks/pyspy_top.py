"""Summarise a py-spy profile (``--format raw``) as the top functions, per process kind.

py-spy samples every process of a running benchmark (``--subprocesses``), including the
pool workers a cProfile in the main process never sees. Its raw output is one line per
distinct stack, ``frame;frame;...;frame count``, each frame ``function (file:line)``, with
the process as the first frame. This prints, per process kind (main or worker), the
functions with the most samples on top of the stack (self) and anywhere in it
(inclusive), so a README can quote where a missed target's time goes.

Run (``pip install -e '.[bench]'`` brings py-spy; it needs ptrace, i.e. root or
``kernel.yama.ptrace_scope=0``)::

    .venv/bin/py-spy record --subprocesses --rate 200 --format raw -o /tmp/p.raw -- \\
        .venv/bin/python benchmarks/bench_pipeline.py --scale 1.0 --videos 48 --workers 8
    .venv/bin/python benchmarks/pyspy_top.py /tmp/p.raw
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``function (path/to/module.py:12)`` -> ``module.py:function`` (short, stable)."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{Path(m.group('file')).name}:{m.group('func')}"


def process_kind(root: str) -> str:
    return "worker" if "spawn_main" in root or "multiprocessing" in root else "main"


def summarise(lines: list[str]) -> dict[str, tuple[int, Counter[str], Counter[str]]]:
    """{process kind: (samples, self counts, inclusive counts)}."""
    total: dict[str, int] = defaultdict(int)
    self_: dict[str, Counter[str]] = defaultdict(Counter)
    incl: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        kind = process_kind(stack)
        n = int(count)
        names = [frame_name(f) for f in frames[1:]] or [frame_name(frames[0])]
        total[kind] += n
        self_[kind][names[-1]] += n
        for name in set(names):
            incl[kind][name] += n
    return {k: (total[k], self_[k], incl[k]) for k in total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("raw", type=Path)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    result = summarise(args.raw.read_text(encoding="utf-8", errors="replace").splitlines())
    for kind, (samples, self_counts, incl_counts) in sorted(result.items()):
        print(f"\n### {kind} processes: {samples} samples\n")
        print("| self % | function | | inclusive % | function |")
        print("|---:|---|---|---:|---|")
        rows = zip(self_counts.most_common(args.top), incl_counts.most_common(args.top),
                   strict=False)
        for (s_name, s_n), (i_name, i_n) in rows:
            print(f"| {100 * s_n / samples:.1f} | `{s_name}` | | "
                  f"{100 * i_n / samples:.1f} | `{i_name}` |")


if __name__ == "__main__":
    main()
