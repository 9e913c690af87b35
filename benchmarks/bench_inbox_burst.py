"""Inbox burst: 1,000 links pasted at once into the inbox of a running daemon.

Starts the real daemon (``vaultd run`` subprocess, ``workers`` from the config, default
2) on a fresh vault with the loopback YouTube and Messages API stand-ins (scale-0.1
latencies, so jobs really run during the burst). A second process plays the user: every
50 ms it appends a line to ``inbox.md`` (four in five in place, one in five by writing a
temp file and renaming it over, as some editors and sync tools do); every tenth line
holds a new video link. One second in, the same process pastes 1,000 links in one
write (run once without the typing, once with it). Measured:

* time until all 1,000 are queued (ledger rows, read from the SQLite ledger, read-only);
* time until every pasted line carries a status in ``inbox.md``;
* how long a link the user types during the burst waits until it is queued (p50 / max);
* daemon RSS (VmRSS) sampled every 100 ms before and during the burst, alone and with
  its children (worker processes): bounded means it does not grow with the 1,000 jobs;
* at the end (daemon stopped): every user line is in ``inbox.md`` exactly once, and every
  pasted link's text is still there.

Target (issue 7): all queued <= 2 s; memory bounded; every user edit survives.

    .venv/bin/python benchmarks/bench_inbox_burst.py [--links 1000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standins import (  # noqa: E402
    KEY,
    MODEL,
    FakeAnthropic,
    SlowYouTube,
    children_of,
    machine,
    make_video,
    model_responder,
    pct,
    rss_kb,
    video_id,
)

CONFIG = f"""\
[daemon]
workers = {{workers}}
debounce_seconds = 0.5

[generate]
backend = "claude"
model = "{MODEL}"
max_concurrent_requests = {{workers}}

[youtube]
min_request_interval_seconds = 0.0
request_budget_per_hour = 0

[pdf]
enabled = false
"""


def editor(inbox: Path, seconds: float, log: Path, paste: Path) -> None:
    """Child process: the user. Types a line every 50 ms for ``seconds`` and, 1 s in,
    pastes the text of ``paste`` in one write (one process, so the user's own writes never
    race each other; ``<log>.paste`` gets the wall-clock time of the paste)."""
    start = time.monotonic()
    deadline = start + max(seconds, 1.5)
    k = 0
    pasted = False
    with open(log, "w", encoding="utf-8") as out:
        while time.monotonic() < deadline:
            if not pasted and time.monotonic() - start >= 1.0:
                text = paste.read_text(encoding="utf-8")
                at = time.time()
                with open(inbox, "a", encoding="utf-8") as fh:
                    fh.write(text)
                Path(f"{log}.paste").write_text(f"{at:.6f}")
                pasted = True
            if time.monotonic() - start >= seconds:
                time.sleep(0.05)
                continue
            k += 1
            if k % 10 == 0:
                vid = video_id(k, "ed")
                line = f"- typed during the burst ({k}): https://youtu.be/{vid}"
            else:
                line = f"user note {k}: remember to review chapter {k % 7}"
            if k % 5 == 0:  # by rename
                tmp = inbox.with_name(f".{inbox.name}.edit~")
                tmp.write_bytes(inbox.read_bytes() + f"{line}\n".encode())
                os.replace(tmp, inbox)
            else:  # in place
                with open(inbox, "a", encoding="utf-8") as fh:
                    fh.write(f"{line}\n")
            out.write(f"{time.time():.4f}\t{line}\n")
            out.flush()
            time.sleep(0.05)


def ledger_rows(path: Path) -> dict[str, float]:
    """key -> created_at, read-only (empty while the ledger does not exist yet)."""
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return dict(db.execute("SELECT key, created_at FROM jobs").fetchall())
    except sqlite3.Error:
        return {}


def run(links: int, workers: int, scale: float, edit_seconds: float, edits_on: bool
        ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ids = [video_id(i, "bu") for i in range(links)]
    videos = {v.video_id: v for v in (make_video(i, 300, "bu") for i in range(links))}
    for i in range(int(edit_seconds * 20) + 20):
        v = make_video(i, 300, "ed")
        videos[v.video_id] = v
    with tempfile.TemporaryDirectory(prefix="vaultd-bench-burst-") as tmpdir, \
            SlowYouTube(videos, 1.0 * scale) as yt, \
            FakeAnthropic(model_responder(2.0 * scale, 1.5 * scale)) as fake:
        tmp = Path(tmpdir)
        vault, state = tmp / "vault", tmp / "state"
        (vault / ".vaultd").mkdir(parents=True)
        (vault / ".vaultd" / "config.toml").write_text(CONFIG.format(workers=workers))
        inbox = vault / "inbox.md"
        inbox.write_text("# Inbox\n\nMy reading list, with notes to self:\n\n")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET",
                                                                 "STATE_DIRECTORY")}
        env.update(VAULTD_STATE_DIR=str(state), ANTHROPIC_API_KEY=KEY,
                   ANTHROPIC_BASE_URL=fake.base_url, VAULTD_YOUTUBE_ORIGIN=yt.origin,
                   PYTHONUNBUFFERED="1")
        log = open(tmp / "daemon.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--vault",
                                 str(vault)], env=env, stdout=log, stderr=log,
                                cwd=str(Path(__file__).resolve().parents[1]))
        os.environ["VAULTD_STATE_DIR"] = str(state)
        from daemon.paths import state_dir_for

        sdir = state_dir_for(vault)
        ledger = sdir / "ledger.sqlite3"
        deadline = time.monotonic() + 120
        while not (sdir / "daemon.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        idle = [rss_kb(proc.pid) for _ in range(5) if not time.sleep(0.1)]
        out["rss_idle_kb"] = max(idle)
        edits = tmp / "edits.tsv"
        paste = tmp / "paste.txt"
        paste.write_text("".join(f"- https://www.youtube.com/watch?v={v}\n" for v in ids))
        ed = subprocess.Popen([sys.executable, __file__, "--editor", str(inbox),
                               str(edit_seconds if edits_on else 0), str(edits), str(paste)])
        stamp = Path(f"{edits}.paste")
        while not stamp.exists() or not stamp.read_text():
            time.sleep(0.005)
        t0 = time.monotonic() - (time.time() - float(stamp.read_text()))
        keys = {f"youtube:{v}" for v in ids}
        queued_at = annotated_at = None
        main_rss: list[int] = []
        total_rss: list[int] = []
        last_sample = 0.0
        while time.monotonic() - t0 < edit_seconds + 5:
            now = time.monotonic()
            if queued_at is None:
                rows = ledger_rows(ledger)
                if len(keys & rows.keys()) == len(keys):
                    queued_at = now - t0
            if annotated_at is None:
                text = inbox.read_text(encoding="utf-8", errors="replace")
                pasted = [ln for ln in text.splitlines() if "youtube.com/watch?v=bu" in ln]
                if len(pasted) >= links and all(" " in ln.split("watch?v=", 1)[1]
                                                for ln in pasted):
                    annotated_at = now - t0
            if now - last_sample >= 0.1:
                last_sample = now
                main_rss.append(rss_kb(proc.pid))
                total_rss.append(main_rss[-1] + sum(rss_kb(c) for c in children_of(proc.pid)))
            if queued_at is not None and annotated_at is not None and ed.poll() is not None:
                break
            time.sleep(0.02)
        ed.wait(timeout=edit_seconds + 30)
        time.sleep(2.0)  # let the daemon register the last typed links
        rows = ledger_rows(ledger)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        typed = [line.split("\t", 1) for line in edits.read_text().splitlines()]
        final = inbox.read_text(encoding="utf-8", errors="replace")
        final_lines = final.splitlines()
        lost = [text for _, text in typed
                if sum(1 for ln in final_lines if ln.startswith(text)) != 1]
        waits = []
        for at, text in typed:
            if "youtu.be/" in text:
                key = "youtube:" + text.rsplit("/", 1)[1]
                if key in rows:
                    waits.append(rows[key] - float(at))
        out.update(
            queued_s=queued_at, annotated_s=annotated_at, edits=len(typed), lost=lost,
            missing_links=sum(1 for v in ids if f"watch?v={v}" not in final),
            typed_links=len(waits), typed_wait_p50=pct(waits, 0.5),
            typed_wait_max=max(waits) if waits else float("nan"),
            rss_main_max_kb=max(main_rss), rss_total_max_kb=max(total_rss),
            rss_main_last_kb=main_rss[-1], jobs=len(rows),
            done=sum(1 for _ in rows), exit=proc.returncode,
            log_errors=[ln for ln in (tmp / "daemon.log").read_text(errors="replace")
                        .splitlines() if " ERROR " in ln][:5])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--links", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--edit-seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="200 links, 4 s of edits")
    ap.add_argument("--editor", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.editor:
        inbox, seconds, log, paste = args.editor
        editor(Path(inbox), float(seconds), Path(log), Path(paste))
        return 0
    if args.quick:
        args.links, args.edit_seconds = 200, 4.0
    print(f"# bench_inbox_burst\n\nMachine: {machine()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| links | workers | user typing every 50 ms | **all queued s** | all lines "
          "annotated s | user lines written | user lines lost | pasted links missing | typed "
          "links: wait to queued p50 / max s | RSS idle MB | RSS max during burst MB (daemon "
          "/ + children) | RSS at end MB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def s(v: float | None) -> str:
        return "not within the run" if v is None else f"{v:.2f}"

    results = []
    for edits_on in (False, True):
        r = run(args.links, args.workers, args.scale, args.edit_seconds, edits_on)
        results.append(r)
        print(f"| {args.links:,} | {args.workers} | {'yes' if edits_on else 'no'} | "
              f"**{s(r['queued_s'])}** | {s(r['annotated_s'])} | {r['edits']} | "
              f"{len(r['lost'])} | {r['missing_links']} | {r['typed_wait_p50']:.2f} / "
              f"{r['typed_wait_max']:.2f} ({r['typed_links']} links) | "
              f"{r['rss_idle_kb'] / 1024:.0f} | {r['rss_main_max_kb'] / 1024:.0f} / "
              f"{r['rss_total_max_kb'] / 1024:.0f} | {r['rss_main_last_kb'] / 1024:.0f} |",
              flush=True)
    for edits_on, r in zip((False, True), results, strict=True):
        ok = r["queued_s"] is not None and r["queued_s"] <= 2.0
        print(f"\nTyping {'on' if edits_on else 'off'}: target all queued <= 2 s "
              f"{'met' if ok else 'NOT met'}. Lost user lines: {r['lost'][:5] or 'none'}. "
              f"Daemon exit code {r['exit']}. Errors logged: {r['log_errors'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
