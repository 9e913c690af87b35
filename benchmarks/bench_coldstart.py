"""Cold start as a user sees it: fresh ``vaultd`` processes, real default pacing (issue 14).

Every case starts the real ``vaultd`` entry script as a subprocess on a fresh vault and
state dir, against the loopback stand-ins of ``standins.py`` (the real
youtube-transcript-api and the real ``anthropic`` SDK on the daemon's side; the stand-ins
run in this process, the daemon in its own). Times are taken from the ``Popen`` call,
so every figure includes interpreter start, imports, worker start-up and pacing.

* **a** ``files``: 24 local subtitle files, 8 workers, the model takes 3 s per call,
  ``vaultd run --once``. Efficiency = ideal / time to the last note on disk, ideal =
  ceil(24/8) rounds x 2 calls x 3 s = 18 s (model time only, as in the issue).
* **b** ``youtube``: 9 YouTube videos, 3 workers, 2 s per call, *default* pacing
  (``[youtube]`` untouched), 0.3 s added to each caption download. Ideal = 3 x 2 x 2 s.
* **c** ``first-call``: seconds from launch to the first model request reaching the
  stand-in, with 8 workers (from case a) and 1 worker (one file).
* **d** ``requests``: YouTube requests per video on the captions path (stand-in hits
  and the ledger's ``source_requests``), then the same videos in a fresh vault and ledger
  whose state keeps only the transcript cache: 0 expected.
* **e** ``paste``: a running daemon (warmed by one video), a URL appended to
  ``inbox.md``: seconds until the note is on disk, split into the fetch (first watch
  request -> caption answer), the model calls and the rest (watcher debounce, queue,
  writer, inbox line).
* **f** ``rss``: a 10k-note vault, 8 workers started (8 videos pasted and done), then
  idle: the daemon's RSS, the fork server's, and per worker RSS, PSS and USS (unique
  pages, ``Private_*`` of ``/proc/<pid>/smaps_rollup``).

``--vaultd PATH`` runs another ``vaultd`` script, e.g. one whose interpreter imports an
older checkout (``git archive <rev> | tar -x -C DIR`` plus a venv whose ``.pth`` lists
DIR before this venv's site-packages), for before/after figures on the same machine.
The daemon runs with its working directory in the temporary folder, so the checkout
it imports is the one its interpreter finds, never this one by accident.

Before it measures, the script compiles the bytecode of the vaultd it runs
(``compileall``), as ``pip install`` does: a shell with ``PYTHONDONTWRITEBYTECODE=1`` and
an editable checkout would otherwise compile every vaultd module at every start, which
is not what a user's installed daemon does. ``--no-compile`` measures that case.

    .venv/bin/python benchmarks/bench_coldstart.py [--cases a b c d e f] [--vaultd PATH]
        [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import _wait  # noqa: E402
from standins import (  # noqa: E402
    KEY,
    MODEL,
    FakeAnthropic,
    SlowYouTube,
    children_of,
    machine,
    make_video,
    model_responder,
    rss_kb,
    video_id,
)

ROOT = Path(__file__).resolve().parents[1]
VAULTD = Path(sys.executable).parent / "vaultd"


class Calls:
    """A model responder that records when each call started and ended (monotonic,
    system-wide on Linux, so comparable with the daemon's clock)."""

    def __init__(self, seconds: float) -> None:
        self.inner = model_responder(seconds, seconds)
        self.spans: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Any:
        start = time.monotonic()
        reply = self.inner(body)
        with self.lock:
            self.spans.append((start, time.monotonic()))
        return reply


class NoteWatch(threading.Thread):
    """Polls ``Study Notes/`` every 20 ms: when each note first appeared on disk."""

    def __init__(self, vault: Path) -> None:
        super().__init__(daemon=True)
        self.folder = vault / "Study Notes"
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.folder.is_dir():
                now = time.monotonic()
                for p in self.folder.glob("*.md"):
                    if "(Assessment)" not in p.name:
                        self.seen.setdefault(p.name, now)
            time.sleep(0.02)


def write_config(vault: Path, workers: int, extra: str = "") -> None:
    (vault / ".vaultd").mkdir(parents=True, exist_ok=True)
    (vault / ".vaultd" / "config.toml").write_text(
        f'[daemon]\nworkers = {workers}\n\n[generate]\nbackend = "claude"\nmodel = "{MODEL}"'
        f"\n{extra}")


def env_for(state: Path, anthropic: str, youtube: str, code: str | None,
            **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "STATE_DIRECTORY", "VAULTD_START_METHOD")}
    env.update(VAULTD_STATE_DIR=str(state), ANTHROPIC_API_KEY=KEY,
               ANTHROPIC_BASE_URL=anthropic, VAULTD_YOUTUBE_ORIGIN=youtube,
               PYTHONUNBUFFERED="1", **extra)
    return env


def launch(vault: Path, env: dict[str, str], log: Path, *args: str
           ) -> tuple[subprocess.Popen[bytes], float]:
    out = open(log, "wb")  # noqa: SIM115 - handed to the child
    t0 = time.monotonic()
    proc = subprocess.Popen([str(VAULTD), "run", *args, "--vault", str(vault)], env=env,
                            stdout=out, stderr=out, cwd=str(vault.parent))
    return proc, t0


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def ledger_rows(state: Path, sql: str) -> list[tuple[Any, ...]]:
    ledger = next(state.rglob("ledger.sqlite3"), None)  # the state dir may nest per vault
    if ledger is None:
        return []
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def source_requests(state: Path) -> list[int | None]:
    try:
        rows = ledger_rows(state, "SELECT source_requests FROM jobs WHERE kind='youtube'")
    except sqlite3.OperationalError:  # an older ledger without the column
        return []
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- cases


_runs = 0


def vault_state(vault: Path, base: Path) -> Path:
    """The state folder the daemon will use for ``vault`` with ``VAULTD_STATE_DIR=base``."""
    from daemon.paths import state_dir_for

    saved = os.environ.get("VAULTD_STATE_DIR")
    os.environ["VAULTD_STATE_DIR"] = str(base)
    try:
        return state_dir_for(vault)
    finally:
        if saved is None:
            os.environ.pop("VAULTD_STATE_DIR")
        else:
            os.environ["VAULTD_STATE_DIR"] = saved


def run_once(tmp: Path, name: str, *, workers: int, seconds: float, lines: list[str],
             yt: SlowYouTube, code: str | None, files: dict[str, str] | None = None,
             pdf: bool = True, seed: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """One ``vaultd run --once`` on a fresh vault: launch -> first call -> notes -> exit.

    ``cpu_s`` is the user + system CPU of the whole ``vaultd`` tree (daemon, fork server,
    workers: all reaped by the time it exits), which a loaded machine does not inflate
    the way it inflates wall time. ``seed(state folder of the vault)`` runs before the
    launch (case d puts a transcript cache there)."""
    global _runs
    _runs += 1
    vault, state = tmp / f"vault-{name}-{_runs}", tmp / f"state-{name}-{_runs}"
    vault.mkdir(parents=True)
    for rel, text in (files or {}).items():
        (vault / rel).parent.mkdir(parents=True, exist_ok=True)
        (vault / rel).write_text(text)
    write_config(vault, workers, "" if pdf else "\n[pdf]\nenabled = false\n")
    (vault / "inbox.md").write_text("# Inbox\n\n" + "".join(f"{x}\n" for x in lines))
    if seed is not None:
        seed(vault_state(vault, state))
    calls = Calls(seconds)
    with FakeAnthropic(calls) as fake:
        env = env_for(state, fake.base_url, yt.origin, code)
        notes = NoteWatch(vault)
        hits0 = len(yt.hits)
        before = load()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc, t0 = launch(vault, env, tmp / f"{name}.log", "--once")
        try:
            _wait(lambda: len(notes.seen) >= len(lines) or proc.poll() is not None,
                 900, f"{name}: notes")
            last_note = max(notes.seen.values(), default=math.nan) - t0
            proc.wait(timeout=900)
            exit_s = time.monotonic() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        finally:
            notes.stop.set()
            stop(proc)
    spans = sorted(calls.spans)
    hits = yt.hits[hits0:]
    return {
        "case": name, "workers": workers, "items": len(lines), "call_s": seconds,
        "notes": len(notes.seen), "rc": proc.returncode, "load_before": before,
        "load_after": load(),
        "first_call_s": spans[0][0] - t0 if spans else math.nan,
        "first_note_s": min(notes.seen.values(), default=math.nan) - t0,
        "last_note_s": last_note, "exit_s": exit_s, "cpu_s": cpu_s,
        "model_span_s": (max(e for _, e in spans) - spans[0][0]) if spans else math.nan,
        "calls": len(spans), "youtube_hits": len(hits),
        "ledger_requests": source_requests(state),
        "ideal_s": math.ceil(len(lines) / workers) * 2 * seconds,
        "state": str(state), "hits_from": hits0,
    }


def efficiency(r: dict[str, Any]) -> float:
    return r["ideal_s"] / r["last_note_s"] if r["last_note_s"] else math.nan


def case_files(tmp: Path, yt: SlowYouTube, code: str | None, workers: int = 8,
               n: int = 24, tag: str = "a") -> dict[str, Any]:
    from helpers import lecture_srt  # tests/helpers.py

    files = {f"Lectures/lecture-{i:02d}.srt": lecture_srt(f"topic {i}", 60, seed=i)
             for i in range(n)}
    lines = [f"- [ ] [[{rel}]]" for rel in files]
    r = run_once(tmp, f"{tag}-files-{workers}w", workers=workers, seconds=3.0, lines=lines,
                 yt=yt, code=code, files=files)
    r["efficiency"] = efficiency(r)
    return r


def case_youtube(tmp: Path, yt: SlowYouTube, code: str | None) -> dict[str, Any]:
    lines = [f"- https://www.youtube.com/watch?v={video_id(i, 'cb')}" for i in range(9)]
    r = run_once(tmp, "b-youtube-3w", workers=3, seconds=2.0, lines=lines, yt=yt, code=code)
    r["efficiency"] = efficiency(r)
    per_video: dict[str, int] = {}
    for h in yt.hits[r.pop("hits_from"):]:  # this run's, not an earlier case b's
        if h.video_id and h.video_id.startswith("cb"):
            per_video[h.video_id] = per_video.get(h.video_id, 0) + 1
    r["requests_per_video"] = sorted(per_video.values())
    return r


def case_cached(tmp: Path, yt: SlowYouTube, code: str | None, first: dict[str, Any]
                ) -> dict[str, Any]:
    """The videos of case b again: new vault and ledger, the transcript cache kept."""
    import shutil

    old = next(Path(first["state"]).rglob("transcripts"))
    lines = [f"- https://www.youtube.com/watch?v={video_id(i, 'cb')}" for i in range(9)]
    hits0 = len(yt.hits)
    r = run_once(tmp, "d-cached", workers=3, seconds=0.2, lines=lines, yt=yt, code=code,
                 seed=lambda state: shutil.copytree(old, state / "transcripts"))
    r["youtube_hits"] = len(yt.hits) - hits0
    return r


def case_paste(tmp: Path, yt: SlowYouTube, code: str | None, seconds: float = 2.0
               ) -> dict[str, Any]:
    vault, state = tmp / "vault-e-paste", tmp / "state-e-paste"
    vault.mkdir(parents=True)
    write_config(vault, 2)
    inbox = vault / "inbox.md"
    inbox.write_text("# Inbox\n\n")
    calls = Calls(seconds)
    out: dict[str, Any] = {"case": "e-paste", "call_s": seconds, "load_before": load()}
    with FakeAnthropic(calls) as fake:
        notes = NoteWatch(vault)
        proc, _ = launch(vault, env_for(state, fake.base_url, yt.origin, code),
                         tmp / "e-paste.log")
        try:
            samples = []
            for k, vid in enumerate([video_id(i, "pe") for i in range(4)]):
                n0, c0, h0 = len(notes.seen), len(calls.spans), len(yt.hits)
                with open(inbox, "a", encoding="utf-8") as fh:
                    t = time.monotonic()
                    fh.write(f"- https://www.youtube.com/watch?v={vid}\n")
                _wait(lambda n0=n0: len(notes.seen) > n0, 300, "pasted note")
                note_at = max(notes.seen.values())
                hits = [h for h in yt.hits[h0:] if h.video_id == vid]
                spans = calls.spans[c0:]
                fetch = 0.0
                if hits:  # the caption answer leaves transcript_seconds after its hit
                    fetch = (max(h.at for h in hits) + yt.transcript_seconds
                             - min(h.at for h in hits))
                model = sum(e - s for s, e in spans)
                total = note_at - t
                row = {"total_s": total, "fetch_s": fetch, "model_s": model,
                       "first_request_s": (min(h.at for h in hits) - t) if hits else None,
                       "rest_s": total - fetch - model, "warm": k > 0}
                samples.append(row)
                time.sleep(1.0)  # a person pastes the next link a moment later
            out["samples"] = samples
        finally:
            notes.stop.set()
            stop(proc)
    out["load_after"] = load()
    return out


def smaps(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2))
    except OSError:
        pass
    return out


def case_rss(tmp: Path, yt: SlowYouTube, code: str | None, notes_n: int = 10_000
             ) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_vault_scale import make_vault

    vault, state = tmp / "vault-f-rss", tmp / "state-f-rss"
    make_vault(vault, notes_n)
    write_config(vault, 8, "\n[pdf]\nenabled = false\n")
    inbox = vault / "inbox.md"
    out: dict[str, Any] = {"case": "f-rss", "notes": notes_n, "load_before": load()}
    with FakeAnthropic(Calls(0.5)) as fake:
        notes = NoteWatch(vault)
        n0 = len(list((vault / "Study Notes").glob("*.md")))
        proc, _ = launch(vault, env_for(state, fake.base_url, yt.origin, code),
                         tmp / "f-rss.log")
        try:
            time.sleep(3.0)
            with open(inbox, "a", encoding="utf-8") as fh:
                fh.write("".join(f"- https://www.youtube.com/watch?v={video_id(i, 'rs')}\n"
                                 for i in range(8)))
            _wait(lambda: len(notes.seen) >= n0 + 8, 600, "8 notes")
            time.sleep(8.0)  # idle
            kids = children_of(proc.pid)
            out["daemon_rss_kb"] = rss_kb(proc.pid)
            procs = []
            for pid in kids:
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                s = smaps(pid)
                stat = Path(f"/proc/{pid}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                kind = ("resource_tracker" if b"resource_tracker" in cmd else
                        "forkserver" if b"forkserver" in cmd and ppid == proc.pid else
                        "worker")
                procs.append({"pid": pid, "kind": kind, "rss_kb": s.get("Rss", 0),
                              "pss_kb": s.get("Pss", 0),
                              "uss_kb": s.get("Private_Clean", 0) + s.get("Private_Dirty", 0)})
            out["children"] = procs
            workers = [p for p in procs if p["kind"] == "worker"]
            out["workers"] = len(workers)
            for key in ("rss_kb", "pss_kb", "uss_kb"):
                out[f"worker_mean_{key}"] = (sum(p[key] for p in workers) // len(workers)
                                             if workers else 0)
            out["total_pss_kb"] = smaps(proc.pid).get("Pss", 0) + sum(p["pss_kb"]
                                                                     for p in procs)
        finally:
            notes.stop.set()
            stop(proc)
    out["load_after"] = load()
    return out


# --------------------------------------------------------------------------- main


def fmt(x: Any) -> str:
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def compile_bytecode(vaultd: Path) -> str:
    """Compile the checkout that ``vaultd`` imports, as ``pip install`` does for an
    installed package: an interpreter with ``PYTHONDONTWRITEBYTECODE=1`` (this machine's
    shell sets it) would otherwise compile all of vaultd's modules from source at every
    start, which no installed vaultd does (0.45 s of the parent's start, 0.2 s of the fork
    server's). Returns what was compiled, for the report."""
    python = vaultd.read_text().splitlines()[0].removeprefix("#!").strip()
    where = subprocess.run(
        [python, "-c", "import daemon, vault_tools, os; print(os.path.dirname(daemon.__file__));"
         " print(os.path.dirname(vault_tools.__file__))"],
        capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()).stdout.split()
    subprocess.run([python, "-m", "compileall", "-q", *where], check=True,
                   stdout=subprocess.DEVNULL)
    return " ".join(where)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=list("abcdef"),
                    help="a b c d e f, and c8 (first call, 8 workers, one item); repeat a "
                    "case to run it again")
    ap.add_argument("--vaultd", type=Path, help="the vaultd script to run (default: this "
                    "venv's)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--no-compile", action="store_true",
                    help="leave vaultd's bytecode as it is (with PYTHONDONTWRITEBYTECODE=1 "
                    "and no __pycache__: every start compiles from source)")
    args = ap.parse_args()
    global VAULTD
    VAULTD = (args.vaultd or VAULTD).absolute()
    print(machine())
    print(f"daemon: {VAULTD}")
    if not args.no_compile:
        print(f"bytecode compiled (as an install does): {compile_bytecode(VAULTD)}")
    args.code = None
    videos = {v.video_id: v for v in
              [make_video(i, 600, "cb") for i in range(9)]
              + [make_video(i, 600, "pe") for i in range(4)]
              + [make_video(i, 300, "rs") for i in range(8)]}
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vaultd-coldstart-") as tmp_name, \
            SlowYouTube(videos, 0.3) as yt:
        tmp = Path(tmp_name)
        b: dict[str, Any] | None = None
        for case in args.cases:
            if case == "a":
                results.append(case_files(tmp, yt, args.code))
            elif case == "b":
                b = case_youtube(tmp, yt, args.code)
                results.append(b)
            elif case == "c":
                results.append(case_files(tmp, yt, args.code, workers=1, n=1, tag="c"))
            elif case == "c8":  # first model call with 8 workers, one item
                results.append(case_files(tmp, yt, args.code, workers=8, n=1, tag="c"))
            elif case == "d":
                if b is None:
                    b = case_youtube(tmp, yt, args.code)
                    results.append(b)
                results.append(case_cached(tmp, yt, args.code, b))
            elif case == "e":
                results.append(case_paste(tmp, yt, args.code))
            elif case == "f":
                results.append(case_rss(tmp, yt, args.code))
            r = results[-1]
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                              for k, v in r.items() if k not in ("state", "hits_from")}),
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
