"""Soak: a daemon fed a new source every few seconds for half an hour (issue 19).

A real ``vaultd run`` on a temp vault (offline backend, PDFs on); every ``--every``
seconds a new subtitle file is written and linked from the inbox, as a person would.
Every ``--sample`` seconds: RSS of the daemon and of its children (process pools), its
open file descriptors, and how many sources are done. What to look for: RSS and open
files level off (no leak per source), every source ends done, the daemon is still up.

    .venv/bin/python benchmarks/bench_soak.py              # 30 minutes
    .venv/bin/python benchmarks/bench_soak.py --minutes 5  # shorter
    .venv/bin/python benchmarks/bench_soak.py --minutes 8 --trace /tmp/snaps  # heap profile
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.standins import children_of, machine, rss_kb  # noqa: E402
from tests.helpers import TOPICS, lecture_srt  # noqa: E402


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def done_lines(inbox: Path) -> int:
    try:
        return inbox.read_text(encoding="utf-8").count("✅")
    except OSError:
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=3.0, help="seconds between sources")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--trace", type=Path, default=None, metavar="DIR",
                    help="run the daemon under tracemalloc, a snapshot in DIR every "
                         "--sample seconds (compare with soak_trace.py compare)")
    ap.add_argument("--frames", type=int, default=12, help="tracemalloc frames (--trace)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vaultd-soak-"))
    vault = root / "vault"
    (vault / "Lectures").mkdir(parents=True)
    (vault / "inbox.md").write_text("# Inbox\n\n", encoding="utf-8")
    env = dict(os.environ, VAULTD_STATE_DIR=str(root / "state"), PYTHONUNBUFFERED="1")
    env.pop("ANTHROPIC_API_KEY", None)
    log = open(root / "daemon.log", "wb")  # noqa: SIM115
    launcher = [sys.executable, "-m", "daemon.cli"]
    if args.trace is not None:
        launcher = [sys.executable, str(Path(__file__).with_name("soak_trace.py")), "launch",
                    str(args.trace), str(args.sample), str(args.frames), "--"]
    proc = subprocess.Popen([*launcher, "run", "--vault", str(vault)], env=env, stdout=log,
                            stderr=log)
    print(machine())
    print(f"vault {vault}; one source every {args.every} s for {args.minutes} min")
    print("| min | sources | done | daemon RSS MB | children RSS MB | open fds |")
    print("|---|---|---|---|---|---|")
    start = time.monotonic()
    end = start + args.minutes * 60
    next_source = start
    next_sample = start
    added = 0
    try:
        while time.monotonic() < end and proc.poll() is None:
            now = time.monotonic()
            if now >= next_source:
                topic = f"{TOPICS[added % len(TOPICS)]}-{added:05d}"
                (vault / "Lectures" / f"{topic}.srt").write_text(
                    lecture_srt(topic, 30, seed=added), encoding="utf-8")
                with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
                    fh.write(f"- [[Lectures/{topic}.srt]]\n")
                added += 1
                next_source += args.every
            if now >= next_sample:
                kids = sum(rss_kb(c) for c in children_of(proc.pid))
                print(f"| {(now - start) / 60:.1f} | {added} | {done_lines(vault / 'inbox.md')}"
                      f" | {rss_kb(proc.pid) / 1024:.0f} | {kids / 1024:.0f} |"
                      f" {open_fds(proc.pid)} |", flush=True)
                next_sample += args.sample
            time.sleep(0.2)
        alive = proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
        log.close()
    print(f"daemon alive at the end: {alive}; exit code after SIGTERM: {code}; "
          f"{done_lines(vault / 'inbox.md')} of {added} done; log {root / 'daemon.log'}")
    return 0 if alive and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
