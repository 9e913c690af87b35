"""Heap profiling for the soak: run ``vaultd`` under tracemalloc and compare snapshots.

Two uses, both for benchmarks only (nothing here is imported by the product):

* as the daemon's launcher (``bench_soak.py --trace DIR`` does this)::

      python benchmarks/soak_trace.py launch DIR SECONDS FRAMES -- run --vault V

  starts :mod:`tracemalloc` with FRAMES frames per allocation (0: no tracing), dumps a
  snapshot to ``DIR/snap-NNN.pickle`` and glibc's malloc figures to ``DIR/malloc.txt``
  every SECONDS (a daemon thread of the profiled process; forked children stop tracing),
  then runs the ``vaultd`` CLI in this process (``SOAK_CENSUS=1``: object counts too);

* as the comparison::

      python benchmarks/soak_trace.py compare DIR/snap-002.pickle DIR/snap-010.pickle

  prints the top growers between two snapshots grouped by traceback (and by file), so
  growth per processed job can be told from the honest growth of the vault index.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_IGNORE = (tracemalloc.Filter(False, tracemalloc.__file__),
           tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
           tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
           tracemalloc.Filter(False, "<unknown>"))


WATCH = ("PdfResult", "Future", "Job", "_ResultItem", "_WorkItem", "frame", "traceback",
         "VideoContent", "_Replaced")


def _owner(obj: object, ignore: set[int], depth: int = 4) -> str:
    """Who holds ``obj``: the types (and dict keys) of its referrers, a few levels up."""
    if depth == 0:
        return "..."
    refs = gc.get_referrers(obj)
    ignore.add(id(refs))
    parts = []
    for ref in refs:
        if id(ref) in ignore or type(ref).__name__ in ("frame", "list_iterator"):
            continue
        name = type(ref).__name__
        if isinstance(ref, dict):
            keys = [k for k, v in ref.items() if v is obj][:1]
            name += f"[{keys[0]!r:.40}]" if keys else ""
        parts.append(f"{name} <- {_owner(ref, ignore, depth - 1)}")
        if len(parts) == 2:
            break
    return "(" + " | ".join(parts) + ")" if parts else "-"


def _census(path: Path) -> None:
    """Counts of the per-job object types, and who holds a few of the newest ones."""
    gc.collect()
    objs = gc.get_objects()
    counts = collections.Counter(type(o).__name__ for o in objs)
    watched = [o for o in objs if type(o).__name__ in WATCH]
    del objs
    ignore = {id(watched)}
    owners: collections.Counter[str] = collections.Counter()
    for o in watched[-40:]:
        owners[f"{type(o).__name__}: {_owner(o, ignore)}"] += 1
    path.write_text(json.dumps({"types": counts.most_common(40),
                                "watched": {t: counts[t] for t in WATCH},
                                "owners": owners.most_common(20)}, indent=1))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_line() -> str:
    """glibc's view: bytes in use by malloc, bytes free but kept in its arenas, mmapped."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return "mallinfo2 unavailable"
    fn.restype = _MallInfo2
    mi = fn()
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh if ":" in line)
    kb = {k: int(status.get(k, "0 kB").split()[0]) for k in ("VmRSS", "RssAnon", "RssFile")}
    rss = kb["VmRSS"] * 1024
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    try:  # SQLite's own allocations (page caches of the ledger's connections)
        sqlite_used = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
        sqlite_used.restype = ctypes.c_int64
        sqlite_mb = f"{sqlite_used() / 2**20:.1f} MB"
    except (OSError, AttributeError):
        sqlite_mb = "?"
    return (f"rss {rss / 2**20:.1f} MB (anon {kb['RssAnon'] / 1024:.1f}, files "
            f"{kb['RssFile'] / 1024:.1f}), python blocks {sys.getallocatedblocks()}, "
            f"malloc in use {mi.uordblks / 2**20:.1f} MB, "
            f"free in arenas {mi.fordblks / 2**20:.1f} MB, arenas {mi.arena / 2**20:.1f} MB, "
            f"mmapped {mi.hblkhd / 2**20:.1f} MB, sqlite {sqlite_mb}, "
            f"python traced {traced / 2**20:.1f} MB, "
            f"threads {threading.active_count()}, gc counts {gc.get_count()}, "
            f"full collections {gc.get_stats()[2]['collections']} "
            f"(collected {gc.get_stats()[2]['collected']})")


def _dumper(out: Path, every: float) -> None:
    n = 0
    stop = threading.Event()
    start = time.monotonic()
    while not stop.wait(every):
        with open(out / "malloc.txt", "a") as fh:
            fh.write(f"{(time.monotonic() - start) / 60:5.1f} min: {malloc_line()}\n")
            if os.environ.get("SOAK_GC"):  # how much cyclic garbage waits for a full pass
                t0 = time.perf_counter()
                found = gc.collect()
                fh.write(f"   gc.collect(): {found} objects in "
                         f"{(time.perf_counter() - t0) * 1000:.0f} ms; {malloc_line()}\n")
            if os.environ.get("SOAK_TRIM"):  # how much of it glibc can give back
                ctypes.CDLL(None).malloc_trim(0)
                fh.write(f"   after malloc_trim(0): {malloc_line()}\n")
        if tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot().filter_traces(_IGNORE)
            snap.dump(str(out / f"snap-{n:03d}.pickle"))
        if os.environ.get("SOAK_CENSUS"):
            _census(out / f"census-{n:03d}.json")
        n += 1


def launch(out: Path, every: float, frames: int, argv: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    if frames > 0:  # 0: only the malloc figures, no tracing (full speed)
        tracemalloc.start(frames)
        os.register_at_fork(after_in_child=tracemalloc.stop)
    threading.Thread(target=_dumper, args=(out, every), name="soak-trace",
                     daemon=True).start()
    sys.path.insert(0, str(ROOT))
    sys.argv = ["vaultd", *argv]
    from daemon.cli.commands import main

    return int(main() or 0)


def compare(old: Path, new: Path, top: int) -> None:
    a = tracemalloc.Snapshot.load(str(old))
    b = tracemalloc.Snapshot.load(str(new))
    total_a = sum(s.size for s in a.statistics("filename"))
    total_b = sum(s.size for s in b.statistics("filename"))
    print(f"traced: {total_a / 2**20:.1f} MB -> {total_b / 2**20:.1f} MB "
          f"(+{(total_b - total_a) / 2**20:.1f} MB)\n")
    print("== by file ==")
    for st in b.compare_to(a, "filename")[:top]:
        print(f"{st.size_diff / 1024:+9.0f} KiB {st.count_diff:+7d} blocks  "
              f"{st.traceback[0].filename}")
    print("\n== by traceback ==")
    for st in b.compare_to(a, "traceback")[:top]:
        print(f"\n{st.size_diff / 1024:+9.0f} KiB {st.count_diff:+7d} blocks "
              f"(now {st.size / 1024:.0f} KiB)")
        for line in st.traceback.format(most_recent_first=True)[:16]:
            print("   ", line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    la = sub.add_parser("launch")
    la.add_argument("out", type=Path)
    la.add_argument("every", type=float)
    la.add_argument("frames", type=int)
    la.add_argument("argv", nargs=argparse.REMAINDER)
    co = sub.add_parser("compare")
    co.add_argument("old", type=Path)
    co.add_argument("new", type=Path)
    co.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    if args.cmd == "launch":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        return launch(args.out, args.every, args.frames, argv)
    compare(args.old, args.new, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
