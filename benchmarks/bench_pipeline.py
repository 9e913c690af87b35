"""Pipeline efficiency: M videos through N workers of the real daemon, against the seed's designs.

For each (M, N) a fresh vault is processed by the real ``daemon.service.daemon.Daemon`` (in this
process: watcher, ledger, dispatcher with its ``ProcessPoolExecutor``, vault writer,
graph keeper, PDF pool) with the Claude backend. The third-party services are loopback
stand-ins running in a *separate* process (so they do not share this process's GIL with
the writer): the YouTube stand-in (``tests/fake_youtube.py``, reached through
``VAULTD_YOUTUBE_ORIGIN``) adds the transcript latency to each caption download, and the
Messages API stand-in (``tests/fake_anthropic.py``, reached through
``ANTHROPIC_BASE_URL`` by the real SDK) adds the notes and assessment latencies and
reports token usage with prompt caching. Latencies are 1 s / 2 s / 1.5 s times ``--scale``.

Each run first warms the daemon (N warm-up videos, so every worker process exists and
has imported its backend, as in a long-running service), then pastes M links into
``inbox.md`` in one write and measures, from that paste:

* wall time until every note is written (and until every job is ``done``, PDFs filed);
* parallel efficiency = ceil(M/N) x per-video latency / wall time;
* time to the first note;
* writer time per video: each generated -> written ``_safe_write`` call timed (p50/p99),
  and the writer's ``busy_seconds`` over the whole run divided by ``writes``;
* where the time goes per video: paste -> claimed, claimed -> generated (the worker),
  generated -> written (from the ledger's timestamps).

PDF export is off (``pdf.enabled = false``) except in one extra row (M=48, N=3): the PDF
pool competes for the same two cores, and the product currently re-submits queued PDF
renders every 10 s (see benchmarks/README.md), which would swamp the measurement.

In the same run the seed's two designs are simulated with threads and sleeps using the
same latencies, the measured writer time and a PDF render time (``--pdf-seconds``,
scaled like the others): (a) one lock held around write + assessment + PDF; (b) "option
1", which issue 7 does not define, modelled as: lock only around the write and PDF, the
assessment outside the lock. A simulation of vaultd's own design (only the write is
serialised) is printed as a sanity check of the simulator.

Targets (issue 7): efficiency >= 0.95 at M=48, N=8; >= 2.5x the seed's locked design at N=3.

    .venv/bin/python benchmarks/bench_pipeline.py [--scale 0.1] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import math
import os
import pstats
import queue
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standins import (  # noqa: E402
    KEY,
    MODEL,
    FakeAnthropic,
    SlowYouTube,
    machine,
    make_video,
    model_responder,
    pct,
    video_id,
)

TRANSCRIPT_S, NOTES_S, ASSESS_S = 1.0, 2.0, 1.5


# --------------------------------------------------------------------------- stand-ins


def serve(count: int, scale: float, seconds: int) -> None:
    """Child process: run both stand-ins until stdin closes, then print request stats."""
    videos = {v.video_id: v for v in (make_video(i, seconds) for i in range(count))}
    with SlowYouTube(videos, TRANSCRIPT_S * scale) as yt, \
            FakeAnthropic(model_responder(NOTES_S * scale, ASSESS_S * scale)) as fake:
        print(json.dumps({"youtube": yt.origin, "anthropic": fake.base_url}), flush=True)
        sys.stdin.read()
        print(json.dumps({"max_in_flight": fake.max_in_flight,
                          "messages": len(fake.message_requests()),
                          "youtube_hits": len(yt.hits)}), flush=True)


class StandIns:
    def __init__(self, count: int, scale: float, seconds: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(count), "--scale", str(scale),
             "--video-seconds", str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        assert self.proc.stdout is not None
        self.urls: dict[str, str] = json.loads(self.proc.stdout.readline())

    def close(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        stats: dict[str, Any] = json.loads(self.proc.stdout.readline() or "{}")
        self.proc.wait(timeout=30)
        return stats


# --------------------------------------------------------------------------- one run


CONFIG = """\
[daemon]
workers = {workers}
debounce_seconds = 0.05
log_level = "WARNING"

[generate]
backend = "claude"
model = "{model}"
max_concurrent_requests = {concurrent}
retry_max_wait_seconds = 1.0

[youtube]
min_request_interval_seconds = 0.0
request_budget_per_hour = 0

[pdf]
enabled = {pdf}
"""


@dataclass
class RunResult:
    m: int
    n: int
    scale: float
    concurrent: int
    pdf: bool = False
    wall_written: float = 0.0
    wall_done: float = 0.0
    first_note: float = 0.0
    write_times: list[float] = field(default_factory=list)
    busy_per_write: float = 0.0
    failed: int = 0
    gen_times: list[float] = field(default_factory=list)  # claimed -> generated (worker)
    queued_times: list[float] = field(default_factory=list)  # paste -> claimed
    handoff_times: list[float] = field(default_factory=list)  # generated -> written
    pdf_submitted: int = 0  # PDF renders handed to the PDF pool in the measured window

    @property
    def latency(self) -> float:
        return (TRANSCRIPT_S + NOTES_S + ASSESS_S) * self.scale

    @property
    def ideal(self) -> float:
        return math.ceil(self.m / self.n) * self.latency

    @property
    def efficiency(self) -> float:
        return self.ideal / self.wall_written if self.wall_written else 0.0


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise TimeoutError(f"timed out waiting for {what}")


def run_daemon(m: int, n: int, first_id: int, urls: dict[str, str], scale: float,
               concurrent: int, pdf: bool, tmp: Path,
               profile: cProfile.Profile | None = None) -> RunResult:
    from daemon.service.daemon import Daemon, RunOptions

    vault, state = tmp / f"vault-{m}-{n}-{first_id}", tmp / f"state-{m}-{n}-{first_id}"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(CONFIG.format(
        workers=n, model=MODEL, concurrent=concurrent, pdf=str(pdf).lower()))
    inbox = vault / "inbox.md"
    inbox.write_text("# Inbox\n\n")
    os.environ.update(VAULTD_STATE_DIR=str(state), ANTHROPIC_API_KEY=KEY,
                      ANTHROPIC_BASE_URL=urls["anthropic"], VAULTD_YOUTUBE_ORIGIN=urls["youtube"])
    os.environ.pop("NOTIFY_SOCKET", None)
    result = RunResult(m, n, scale, concurrent, pdf)
    daemon = Daemon(vault, RunOptions(workers=n))
    daemon.start()
    writer = daemon.writer
    written: dict[str, float] = {}
    durations: list[float] = []
    original = writer._safe_write

    def timed_write(key: str) -> None:  # instrumentation only: the product code runs as is
        before = writer.writes
        t = time.perf_counter()
        if profile is not None:
            profile.enable()
        original(key)
        if profile is not None:
            profile.disable()
        end = time.perf_counter()
        if writer.writes > before:
            written[key] = time.monotonic()
            durations.append(end - t)

    writer._safe_write = timed_write  # type: ignore[method-assign]
    submitted = [0]
    pdf_submit = daemon.pdfs.submit

    def counted_submit(key: str | None, notes: list[tuple[str, str, str]]) -> None:
        submitted[0] += len(notes)
        pdf_submit(key, notes)

    daemon.pdfs.submit = counted_submit  # type: ignore[method-assign]
    try:
        def settled() -> bool:
            c = daemon.ledger.counts()
            return c["ready"] + c["running"] + c["generated"] + c["written"] == 0

        def paste(ids: list[str]) -> float:
            lines = "".join(f"- https://www.youtube.com/watch?v={v}\n" for v in ids)
            t = time.monotonic()
            with open(inbox, "a", encoding="utf-8") as fh:
                fh.write(lines)
            return t

        warm = [video_id(first_id + m + i) for i in range(n)]
        paste(warm)
        _wait(lambda: len(written) >= n and settled(), 120 + 20 * n, "warm-up")
        time.sleep(0.5)
        ids = [video_id(first_id + i) for i in range(m)]
        keys = {f"youtube:{v}" for v in ids}
        written.clear()
        durations.clear()
        busy0, writes0 = writer.busy_seconds, writer.writes
        submitted[0] = 0
        t0 = paste(ids)

        def all_written() -> bool:
            if len(keys & written.keys()) == len(keys):
                return True
            return daemon.ledger.counts()["failed"] > 0 and settled()

        _wait(all_written, 60 + m * result.latency * 4 + m * 0.5, "notes written")
        mine = [written[k] for k in keys if k in written]
        result.wall_written = max(mine) - t0
        result.first_note = min(mine) - t0
        _wait(settled, 60 + m * 2.0, "jobs done")
        result.wall_done = time.monotonic() - t0
        result.write_times = list(durations)
        writes = writer.writes - writes0
        result.busy_per_write = (writer.busy_seconds - busy0) / max(writes, 1)
        result.failed = daemon.ledger.counts()["failed"]
        result.pdf_submitted = submitted[0]
        with sqlite3.connect(f"file:{daemon.paths.ledger}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT key, claimed_at, generated_at FROM jobs").fetchall()
        wall0 = time.time() - (time.monotonic() - t0)
        for key, claimed, generated in rows:
            if key in keys and claimed and generated:
                result.gen_times.append(generated - claimed)
                result.queued_times.append(claimed - wall0)
                if key in written:
                    result.handoff_times.append(written[key] - t0 - (generated - wall0))
    finally:
        # Teardown only (measurements are done): drop queued PDF renders, else stop()
        # waits for the whole PDF backlog (see the README: duplicate PDF renders).
        daemon.pdfs.shutdown(timeout=0)
        daemon.stop()
    return result


# --------------------------------------------------------------------------- simulations


@dataclass(frozen=True)
class Latencies:
    transcript: float
    notes: float
    assessment: float
    write: float
    pdf: float


def simulate(m: int, n: int, lat: Latencies, design: str) -> float:
    """Wall time of M videos through N threads under a locking design (sleeps only)."""
    todo: queue.Queue[int] = queue.Queue()
    for i in range(m):
        todo.put(i)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                todo.get_nowait()
            except queue.Empty:
                return
            time.sleep(lat.transcript)
            time.sleep(lat.notes)
            if design == "seed-locked":  # (a) write + assessment + PDF under one lock
                with lock:
                    time.sleep(lat.write)
                    time.sleep(lat.assessment)
                    time.sleep(lat.pdf)
            elif design == "seed-option1":  # (b) assessment outside, write + PDF inside
                time.sleep(lat.assessment)
                with lock:
                    time.sleep(lat.write)
                    time.sleep(lat.pdf)
            else:  # vaultd: only the write is serialised (one writer), PDF off the path
                time.sleep(lat.assessment)
                with lock:
                    time.sleep(lat.write)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t


# --------------------------------------------------------------------------- main


def fmt_table(rows: list[list[str]], head: list[str]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.1, help="latency factor (1.0: 1/2/1.5 s)")
    ap.add_argument("--videos", type=int, nargs="+", default=[12, 48, 200])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 3, 8])
    ap.add_argument("--pdf-seconds", type=float, default=1.0,
                    help="seed's PDF render time at scale 1 (simulations only)")
    ap.add_argument("--video-seconds", type=int, default=600, help="length of each video")
    ap.add_argument("--concurrent", type=int, default=0,
                    help="generate.max_concurrent_requests (0: = workers)")
    ap.add_argument("--pdf", action="store_true",
                    help="pdf.enabled = true in every run (default: only the extra PDF row)")
    ap.add_argument("--extra", action=argparse.BooleanOptionalAction, default=True,
                    help="also M=48,N=8 at scale 1.0, with max_concurrent_requests=2, and "
                    "M=48,N=3 with PDFs")
    ap.add_argument("--quick", action="store_true", help="smoke run: M=12, N=1 and 3")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the writer's note writes and print the top functions")
    ap.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.scale, args.video_seconds)
        return 0
    if args.quick:
        args.videos, args.workers, args.extra = [12], [1, 3], False

    from daemon.logs import setup_logging

    setup_logging("WARNING")
    logging.getLogger("vaultd").setLevel(logging.WARNING)
    print(f"# bench_pipeline\n\nMachine: {machine()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    plan: list[tuple[int, int, float, int, bool]] = [
        (m, n, args.scale, args.concurrent or n, args.pdf) for m in args.videos
        for n in args.workers]
    if args.extra:
        plan += [(48, 8, 1.0, 8, args.pdf), (48, 8, args.scale, 2, args.pdf),
                 (48, 3, args.scale, 3, True)]
    results: list[RunResult] = []
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="vaultd-bench-pipe-") as tmpdir:
        tmp = Path(tmpdir)
        for scale in sorted({p[2] for p in plan}):
            runs = [p for p in plan if p[2] == scale]
            total = sum(m + n for m, n, *_ in runs)
            standins = StandIns(total, scale, args.video_seconds)
            first = 0
            try:
                for m, n, _, conc, pdf in runs:
                    t = time.monotonic()
                    r = run_daemon(m, n, first, standins.urls, scale, conc, pdf, tmp, profile)
                    first += m + n
                    results.append(r)
                    print(f"  M={m:3d} N={n} scale={scale} conc={conc} pdf={pdf}: written in "
                          f"{r.wall_written:.2f} s (ideal {r.ideal:.2f} s, efficiency "
                          f"{r.efficiency:.2f}), done {r.wall_done:.2f} s, failed {r.failed}"
                          f", PDF renders {r.pdf_submitted} (needed {2 * m if pdf else 0})"
                          f" [{time.monotonic() - t:.0f} s]", flush=True)
            finally:
                stats = standins.close()
            print(f"  stand-ins at scale {scale}: {stats}")

    print("\n## vaultd (real daemon)\n")
    rows = []
    for r in results:
        rows.append([str(r.m), str(r.n), f"{r.scale:g}", str(r.concurrent),
                     "on" if r.pdf else "off", f"{r.ideal:.2f}", f"{r.wall_written:.2f}",
                     f"**{r.efficiency:.2f}**",
                     f"{r.wall_done:.2f}", f"{r.first_note:.2f}",
                     f"{pct(r.write_times, 0.5) * 1000:.1f}",
                     f"{pct(r.write_times, 0.99) * 1000:.1f}",
                     f"{r.busy_per_write * 1000:.1f}", str(r.failed)])
    print(fmt_table(rows, ["M", "N", "scale", "max conc.", "PDF", "ideal s", "all written s",
                           "efficiency", "all done s", "first note s", "write p50 ms",
                           "write p99 ms", "writer busy/video ms", "failed"]))

    print("\n## Where the time goes (per video, p50 / p99 in ms)\n")
    rows = []
    for r in results:
        rows.append([str(r.m), str(r.n), f"{r.scale:g}", "on" if r.pdf else "off",
                     f"{r.latency * 1000:.0f}"]
                    + [f"{pct(v, 0.5) * 1000:.0f} / {pct(v, 0.99) * 1000:.0f}"
                       for v in (r.queued_times, r.gen_times, r.handoff_times)])
    print(fmt_table(rows, ["M", "N", "scale", "PDF", "stand-in latency", "paste -> claimed",
                           "claimed -> generated (worker)", "generated -> written"]))
    if profile is not None:
        print("\n## cProfile of the writer's note writes (cumulative)\n\n```")
        pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
        print("```")

    print("\n## Against the seed's designs (simulated, same latencies)\n")
    print(f"PDF render time in the seed: {args.pdf_seconds:g} s at scale 1 (--pdf-seconds). "
          "Option 1 is not defined in issue 7; modelled as lock around write + PDF, "
          "assessment outside.\n")
    rows = []
    chosen = [r for r in results
              if r.scale == args.scale and r.concurrent == r.n and r.pdf == args.pdf]
    designs = ("vaultd-model", "seed-locked", "seed-option1")
    futures = {}
    with ThreadPoolExecutor(max_workers=len(chosen) * len(designs) or 1) as pool:
        for r in chosen:  # sleep-bound simulations: all run at once
            lat = Latencies(TRANSCRIPT_S * r.scale, NOTES_S * r.scale, ASSESS_S * r.scale,
                            pct(r.write_times, 0.5), args.pdf_seconds * r.scale)
            for d in designs:
                futures[(id(r), d)] = pool.submit(simulate, r.m, r.n, lat, d)
    for r in chosen:
        sims = {d: futures[(id(r), d)].result() for d in designs}
        rows.append([str(r.m), str(r.n), f"{r.wall_written:.2f}",
                     f"{sims['vaultd-model']:.2f}", f"{sims['seed-locked']:.2f}",
                     f"{sims['seed-option1']:.2f}",
                     f"{r.ideal / sims['seed-locked']:.2f}",
                     f"**{sims['seed-locked'] / r.wall_written:.2f}x**",
                     f"{sims['seed-option1'] / r.wall_written:.2f}x",
                     f"{sims['seed-locked'] / sims['vaultd-model']:.2f}x"])
    print(fmt_table(rows, ["M", "N", "vaultd real s", "vaultd sim s", "seed (a) locked s",
                           "seed (b) option 1 s", "seed (a) efficiency",
                           "vaultd speed-up vs (a)", "vs (b)",
                           "design only: (a) / vaultd sim"]))
    lock_needed = (TRANSCRIPT_S + NOTES_S + ASSESS_S) * 2.5 / 3 - ASSESS_S
    print(f"\nBreak-even: at N=3 even a perfect vaultd is 2.5x the locked seed only when the "
          f"seed's lock is held >= {(TRANSCRIPT_S + NOTES_S + ASSESS_S) * 2.5 / 3:.2f} s per "
          f"video (scale 1), i.e. write + PDF >= {lock_needed:.2f} s beside the 1.5 s "
          "assessment.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
