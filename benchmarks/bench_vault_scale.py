"""Vault scale: start-up, writer work per video, graph note render and daemon memory.

For generated vaults of 1k / 10k (optionally 50k) notes (study notes with frontmatter,
assessments and user notes, with wikilinks, tags, aliases, key concepts and a Related
section, ~2-3 KB each), measures:

* **start-up** pieces, in this process: ``VaultKnowledge`` (``VaultIndex.build``) and the
  knowledge graph, rebuilt from the vault (first start) and loaded from its saved JSON
  (every later start); and the real daemon (``vaultd run`` subprocess): seconds from
  launch until it logs both "indexed" and "knowledge graph loaded/rebuilt";
* **writer work per video**: the real ``VaultWriter`` (not started as a thread; its
  methods are called directly, as its thread would) writing K generated jobs into the big
  vault: ``_safe_write`` (compose, sanitise, link, related notes, two atomic creates,
  note facts, ledger) and ``refresh_inbox`` (the inbox line), plus the keeper's
  ``update_from_facts`` on the loaded graph; p50 / p99 per video;
* **graph note render**: ``graphkeeper.render_outputs`` (analysis + note + canvas);
* **RSS** (VmRSS from /proc) of the daemon process idle after start-up, and of the daemon
  and all its children while 8 workers are busy on the stand-ins (scale-1 latencies).

Targets (issue 7) at 10k: start-up <= 5 s, writer p99 <= 50 ms, idle RSS <= 150 MB.

    .venv/bin/python benchmarks/bench_vault_scale.py [--sizes 1000 10000 [50000]] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import re
import signal
import statistics
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
    TOPICS,
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

WORDS = ("memory attention entropy gradient descent network market inflation protein enzyme "
         "cell orbit gravity energy momentum wave particle field theory proof logic set graph "
         "tree sort search cache kernel thread process lock queue signal filter model data "
         "history empire revolution language grammar syntax meaning ethics virtue").split()


def make_vault(vault: Path, n: int, seed: int = 7) -> None:
    """``n`` notes: 45% study notes, 40% assessments, 15% user notes, in topic folders."""
    rng = random.Random(seed)
    titles: list[str] = []
    concepts = [f"{rng.choice(WORDS)} {rng.choice(WORDS)}" for _ in range(max(n // 4, 20))]
    for i in range(n):
        kind = rng.choices(["study", "assess", "user"], [45, 40, 15])[0]
        title = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}"
        folder = vault / ("Study Notes" if kind != "user" else f"Notes/{rng.choice(WORDS)}")
        folder.mkdir(parents=True, exist_ok=True)
        links = [rng.choice(titles) for _ in range(rng.randint(0, 5))] if titles else []
        terms = rng.sample(concepts, 5)
        tags = [f"topic/{rng.choice(WORDS)}", "video"]
        body = "\n".join(
            f"- {' '.join(rng.choices(WORDS, k=12))} [[{t}]] [{i % 60}:{k * 7 % 60:02d}]"
            for k, t in enumerate(links + [""] * 12) if k < 14).replace(" [[]]", "")
        if kind == "study":
            vid = video_id(i, "vs")
            fm = (f"---\ntype: study-note\ntitle: \"{title}\"\nsource: "
                  f"https://www.youtube.com/watch?v={vid}\nvideo_id: {vid}\nchannel: Ch\n"
                  f"duration: 600\ncreated: 2026-01-01T10:00:00+00:00\ntags:\n"
                  + "".join(f"  - {t}\n" for t in tags)
                  + f"aliases:\n  - \"{title} alias\"\nkey_concepts:\n"
                  + "".join(f"  - {t}\n" for t in terms)
                  + f"assessment: \"[[{title} (Assessment)]]\"\nmodel: {MODEL}\n---\n")
            text = (f"{fm}\n> [!tldr] TL;DR\n> {' '.join(rng.choices(WORDS, k=30))}\n\n"
                    f"## Key concepts\n{body}\n\n## Related\n"
                    + "".join(f"- [[{t}]]\n" for t in links[:3]))
        elif kind == "assess":
            fm = (f"---\ntype: assessment\nsource: https://www.youtube.com/watch?v="
                  f"{video_id(i, 'va')}\nnotes: \"[[{title}]]\"\n---\n")
            text = fm + "\n## Gap check\n\n" + body + "\n"
        else:
            text = (f"---\ntags: [{tags[0]}]\n---\n# {title}\n\n{body}\n")
        (folder / f"{title}.md").write_text(text, encoding="utf-8")
        titles.append(title)
    (vault / "inbox.md").write_text("# Inbox\n\n")


def _config(vault: Path, workers: int) -> None:
    (vault / ".vaultd").mkdir(exist_ok=True)
    (vault / ".vaultd" / "config.toml").write_text(f"""\
[daemon]
workers = {workers}
debounce_seconds = 0.1

[generate]
backend = "claude"
model = "{MODEL}"
max_concurrent_requests = {workers}

[youtube]
min_request_interval_seconds = 0.0
request_budget_per_hour = 0

[pdf]
enabled = false
""")


# --------------------------------------------------------------------------- in-process


def content_for(i: int, titles: list[str]) -> Any:
    from vault_tools.models import SourceMeta, Usage, VideoContent

    rng = random.Random(i)
    vid = video_id(i, "new")
    mentions = rng.sample(titles, min(6, len(titles)))
    lines = [f"- {' '.join(rng.choices(WORDS, k=14))}, see {m} [{k}:{k * 3 % 60:02d}]"
             for k, m in enumerate(mentions)]
    lines += [f"- {' '.join(rng.choices(WORDS, k=16))} [{k}:15]" for k in range(30)]
    note = (f"> [!tldr] TL;DR\n> {' '.join(rng.choices(WORDS, k=30))}\n\n## Key concepts\n"
            + "\n".join(lines))
    assess = "\n".join(f"**{q}.** {' '.join(rng.choices(WORDS, k=10))}?\n\n> [!answer]- Answer\n"
                       f"> {' '.join(rng.choices(WORDS, k=14))} [{q}:00]\n" for q in range(16))
    meta = SourceMeta(key=f"youtube:{vid}", kind="youtube", title=f"New lecture {i}: "
                      f"{TOPICS[i % len(TOPICS)]}", url=f"https://www.youtube.com/watch?v={vid}",
                      video_id=vid, channel="Bench", duration=1800.0, published="2026-01-02")
    return VideoContent(meta=meta, note_markdown=note, assessment_markdown=assess, model=MODEL,
                        tags=["lecture", TOPICS[i % len(TOPICS)]], aliases=[],
                        key_terms=[f"{rng.choice(WORDS)} {rng.choice(WORDS)}" for _ in range(5)],
                        usage=Usage(100, 200, 300, 400, 0.01))


def _top(prof: cProfile.Profile, title: str, n: int = 22) -> None:
    print(f"\n### cProfile: {title} (cumulative)\n\n```")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(n)
    print("```")


def in_process(vault: Path, state: Path, videos: int, profile: bool = False
               ) -> dict[str, Any]:
    from daemon.jobs.ledger import Ledger
    from daemon.service.daemon import open_vault
    from daemon.writer.graph_keeper import load_or_rebuild, render_outputs
    from daemon.writer.vault_knowledge import VaultKnowledge
    from daemon.writer.vault_writer import VaultWriter
    from vault_tools.graph import KnowledgeGraph

    os.environ["VAULTD_STATE_DIR"] = str(state)
    state.mkdir(parents=True, exist_ok=True)
    config, paths = open_vault(vault)
    exclude = {"inbox.md", "Knowledge Graph.md", "Knowledge Graph.canvas"}
    out: dict[str, Any] = {}
    t = time.perf_counter()
    knowledge = VaultKnowledge(vault, exclude)
    out["index_s"] = time.perf_counter() - t
    saved = state / "graph-bench.json"
    prof = cProfile.Profile() if profile else None
    t = time.perf_counter()
    if prof:
        prof.enable()
    graph, _ = load_or_rebuild(vault, saved, sorted(exclude), rebuild=True)
    if prof:
        prof.disable()
        _top(prof, f"graph rebuild from the vault, {len(knowledge.index)} notes", 15)
    out["graph_rebuild_s"] = time.perf_counter() - t
    saved.write_text(graph.to_json(), encoding="utf-8")
    out["graph_json_mb"] = saved.stat().st_size / 1e6
    prof = cProfile.Profile() if profile else None
    t = time.perf_counter()
    if prof:
        prof.enable()
    graph = KnowledgeGraph.from_json(saved.read_text(encoding="utf-8"))
    if prof:
        prof.disable()
        _top(prof, f"graph load from JSON, {len(knowledge.index)} notes", 15)
    out["graph_load_s"] = time.perf_counter() - t
    out["notes"] = len(knowledge.index)

    # Cold: no earlier clustering (a vault's first render, or after --rebuild). Three
    # runs, median reported: this machine's speed varies by +-30 % from run to run.
    cold = []
    for _ in range(3):
        t = time.perf_counter()
        _note, _canvas, analysis = render_outputs(graph)
        cold.append(time.perf_counter() - t)
    out["render_s"] = statistics.median(cold)
    out["render_cold_runs"] = cold
    # What the graph keeper does after a note is added: re-render, clustering warm-started
    # from the previous analysis.
    warm = []
    for k in range(3):
        graph.update_note(f"Study Notes/bench-new-note-{k}.md", title=f"Bench new note {k}",
                          tags=["video-notes"], links=[], concepts=["memory", "energy"],
                          created=None, kind="study-note")
        t = time.perf_counter()
        _note, _canvas, analysis = render_outputs(graph, analysis)
        warm.append(time.perf_counter() - t)
    out["render_warm_s"] = statistics.median(warm)
    out["render_warm_runs"] = warm

    ledger = Ledger(paths.ledger)
    writer = VaultWriter(paths, ledger, config)
    writer.knowledge = knowledge
    facts_seen: list[Any] = []

    class Keeper:  # the keeper's queue, captured; applied below and timed separately
        def update(self, facts: Any) -> None:
            facts_seen.append(facts)

    writer.keeper = Keeper()  # type: ignore[assignment]
    writer.pdfs = None
    titles = [Path(e.path).stem for e in knowledge.index.entries()][:5000]
    safe, inbox, facts_t, total = [], [], [], []
    for i in range(videos + 3):  # the first three warm caches (linker build) and are dropped
        c = content_for(i, titles)
        key = c.meta.key
        with open(paths.inbox, "a", encoding="utf-8") as fh:
            fh.write(f"- {c.meta.url}\n")
        writer.refresh_inbox()  # registers the job (ready)
        job = ledger.claim_next("bench")
        assert job is not None and job.key == key, job
        ledger.mark_generated(key, c.to_json(), c.usage, c.meta.title)
        facts_seen.clear()
        if i == 3:
            prof = cProfile.Profile() if profile else None
        if prof and i >= 3:
            prof.enable()
        t0 = time.perf_counter()
        writer._safe_write(key)
        t1 = time.perf_counter()
        writer.refresh_inbox()
        t2 = time.perf_counter()
        if prof and i >= 3:
            prof.disable()
        for f in facts_seen:
            graph.update_from_facts(f)
        t3 = time.perf_counter()
        if i >= 3:
            safe.append(t1 - t0)
            inbox.append(t2 - t1)
            facts_t.append(t3 - t2)
            total.append(t2 - t0)
    ledger.close()
    if prof:
        _top(prof, f"writer work for {videos} videos into {len(knowledge.index)} notes")
    out.update(safe=safe, inbox=inbox, facts=facts_t, total=total)
    return out


# --------------------------------------------------------------------------- subprocess


def wait_log(log: Path, patterns: list[str], timeout: float) -> dict[str, float]:
    """Seconds (from now) at which each regex first appears in the log."""
    t0 = time.monotonic()
    found: dict[str, float] = {}
    while time.monotonic() - t0 < timeout and len(found) < len(patterns):
        text = log.read_text(errors="replace") if log.exists() else ""
        for p in patterns:
            if p not in found and re.search(p, text):
                found[p] = time.monotonic() - t0
        time.sleep(0.05)
    return found


def daemon_run(vault: Path, state: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--vault", str(vault)],
                            env=env, stdout=out, stderr=out, cwd=str(Path(__file__).parents[1]))


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def subprocess_runs(vault: Path, state: Path, n: int, workers: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    state.mkdir(parents=True, exist_ok=True)
    busy_videos = workers * 2
    videos = {v.video_id: v for v in (make_video(i, 600, "rs") for i in range(busy_videos))}
    with SlowYouTube(videos, 1.0) as yt, FakeAnthropic(model_responder(2.0, 1.5)) as fake:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET",
                                                                 "STATE_DIRECTORY")}
        env.update(VAULTD_STATE_DIR=str(state), ANTHROPIC_API_KEY=KEY,
                   ANTHROPIC_BASE_URL=fake.base_url, VAULTD_YOUTUBE_ORIGIN=yt.origin,
                   PYTHONUNBUFFERED="1")
        ready = [r"indexed \d+ notes", r"knowledge graph (loaded|rebuilt)"]
        timeout = 120 + n / 100
        for phase in ("first", "restart"):
            log = state / f"daemon-{phase}.log"
            proc = daemon_run(vault, state, env, log)
            seen = wait_log(log, ready, timeout)
            out[f"{phase}_ready_s"] = max(seen.values()) if len(seen) == 2 else float("nan")
            text = log.read_text(errors="replace")
            m = re.search(r"indexed \d+ notes in ([\d.]+) s", text)
            g = re.search(r"knowledge graph (?:loaded|rebuilt) in ([\d.]+) s", text)
            out[f"{phase}_index_log_s"] = float(m.group(1)) if m else float("nan")
            out[f"{phase}_graph_log_s"] = float(g.group(1)) if g else float("nan")
            if phase == "first":
                wait_log(log, [r"graph note rendered"], 60 + n / 200)
                time.sleep(2)
                out["idle_rss_kb"] = rss_kb(proc.pid)
                stop(proc)
                continue
            time.sleep(3)
            out["idle_rss_restart_kb"] = rss_kb(proc.pid)
            with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
                fh.write("".join(f"- https://youtu.be/{v}\n" for v in videos))
            peak_main = peak_total = 0
            busy_samples = 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60 and busy_samples < 40:
                main = rss_kb(proc.pid)
                kids = children_of(proc.pid)
                total = main + sum(rss_kb(k) for k in kids)
                peak_main, peak_total = max(peak_main, main), max(peak_total, total)
                if fake.in_flight >= min(workers, 2) or len(kids) >= workers:
                    busy_samples += 1
                out["children"] = max(out.get("children", 0), len(kids))
                time.sleep(0.25)
            out["busy_main_rss_kb"], out["busy_total_rss_kb"] = peak_main, peak_total
            out["max_in_flight"] = fake.max_in_flight
            stop(proc)
    return out


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--videos", type=int, default=40, help="jobs written per size")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--no-daemon", action="store_true", help="skip the subprocess runs")
    ap.add_argument("--quick", action="store_true", help="1k notes, 10 videos")
    ap.add_argument("--profile", action="store_true", help="cProfile graph load and writer")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.videos = [1000], 10
    print(f"# bench_vault_scale\n\nMachine: {machine()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"vaultd-bench-scale-{n}-") as tmpdir:
            tmp = Path(tmpdir)
            vault, state = tmp / "vault", tmp / "state"
            vault.mkdir()
            t = time.perf_counter()
            make_vault(vault, n)
            _config(vault, args.workers)
            gen = time.perf_counter() - t
            r = in_process(vault, state / "inproc", args.videos, args.profile)
            r["size"], r["gen_s"] = n, gen
            print(f"  {n} notes: generated in {gen:.1f} s; index {r['index_s']:.2f} s, graph "
                  f"rebuild {r['graph_rebuild_s']:.2f} s / load {r['graph_load_s']:.2f} s, "
                  f"render {r['render_s']:.2f} s, writer p99 {pct(r['total'], 0.99) * 1000:.1f}"
                  " ms", flush=True)
            if not args.no_daemon:
                r.update(subprocess_runs(vault, state / "daemon", n, args.workers))
                print(f"  daemon: {({k: v for k, v in r.items() if 'rss' in k or 'ready' in k})}",
                      flush=True)
            rows.append(r)

    print("\n## Start-up and graph note\n")
    print("| notes | index build s | graph rebuild s | graph load s | **start-up s** (index + "
          "load) | daemon ready, first start s | daemon ready, restart s | graph JSON MB | "
          "graph note + canvas render s, cold / after one new note (median of 3; runs) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size']:,} | {r['index_s']:.2f} | {r['graph_rebuild_s']:.2f} | "
              f"{r['graph_load_s']:.2f} | **{r['index_s'] + r['graph_load_s']:.2f}** | "
              f"{r.get('first_ready_s', float('nan')):.2f} | "
              f"{r.get('restart_ready_s', float('nan')):.2f} | {r['graph_json_mb']:.1f} | "
              f"{r['render_s']:.2f} / {r['render_warm_s']:.2f} "
              f"({' '.join(f'{x:.2f}' for x in r['render_cold_runs'])} / "
              f"{' '.join(f'{x:.2f}' for x in r['render_warm_runs'])}) |")
    print("\n## Writer work per video (ms, p50 / p99)\n")
    print("| notes | videos | _safe_write | refresh_inbox | **writer total** | graph facts "
          "(keeper) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{pct(r[k], 0.5) * 1000:.1f} / {pct(r[k], 0.99) * 1000:.1f}"
                 for k in ("safe", "inbox", "total", "facts")]
        cells[2] = f"**{cells[2]}**"
        print(f"| {r['size']:,} | {len(r['total'])} | " + " | ".join(cells) + " |")
    if not args.no_daemon:
        print("\n## Resident memory (MB, VmRSS)\n")
        print("| notes | daemon idle (first start) | **daemon idle (restart)** | daemon, "
              f"{args.workers} workers busy | daemon + children, busy | children |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['size']:,} | {r.get('idle_rss_kb', 0) / 1024:.0f} | "
                  f"**{r.get('idle_rss_restart_kb', 0) / 1024:.0f}** | "
                  f"{r.get('busy_main_rss_kb', 0) / 1024:.0f} | "
                  f"{r.get('busy_total_rss_kb', 0) / 1024:.0f} | {r.get('children', 0)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
