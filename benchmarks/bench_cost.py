"""Cost per video: prompt caching against sending the transcript twice.

Drives the real ``daemon.generate.claude.ClaudeBackend`` (real ``anthropic`` SDK) against
the loopback Messages API stand-in (``tests/fake_anthropic.py``), which reports usage the
way the API does: the prefix up to the last ``cache_control`` block is a cache write the
first time (if >= 1,024 tokens) and a cache read afterwards; tokens are characters / 4.

For each transcript length (default 10, 60 and 180 minutes of speech at ~150 words a
minute, one caption every 5 s):

* **cached**: ``backend.generate()`` as the daemon runs it (notes call, then assessment
  call, sharing the cached system prefix);
* **naive**: the same two requests (``backend.prepare()`` / ``backend.requests()``) with
  ``cache_control`` removed, sent through the same client: the transcript is paid twice.

Input cost and total cost (input + output) come from ``daemon.generate.pricing``
(cache write 1.25x, cache read 0.1x of the base input price), for the configured model
and, for comparison, the other families' list prices on the same usage.

Target (issue 7): cached input cost <= 0.7x the naive input cost for a 1-hour transcript.

    .venv/bin/python benchmarks/bench_cost.py [--minutes 10 60 180] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standins import KEY, FakeAnthropic, lecture_sentences, machine, model_responder  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.generate.base import GenerationContext  # noqa: E402
from daemon.generate.claude import ClaudeBackend  # noqa: E402
from daemon.generate.pricing import estimate_cost  # noqa: E402
from daemon.generate.reader import read_assessment, read_note  # noqa: E402
from vault_tools.models import Segment, SourceMeta, Transcript, Usage  # noqa: E402

MODELS = ["claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5"]


def lecture(minutes: int, words_per_minute: int = 150) -> tuple[Transcript, SourceMeta]:
    seconds = minutes * 60
    cues = seconds // 5
    words = words_per_minute * minutes
    per_cue = max(words // cues, 1)
    pool = " ".join(lecture_sentences("the physics of everyday things", cues, minutes)).split()
    segs = [Segment(i * 5.0, 5.0, " ".join(pool[(i * per_cue + k) % len(pool)]
                                           for k in range(per_cue))) for i in range(cues)]
    vid = f"cost{minutes:07d}"
    meta = SourceMeta(key=f"youtube:{vid}", kind="youtube", title=f"A {minutes}-minute lecture",
                      url=f"https://www.youtube.com/watch?v={vid}", video_id=vid,
                      channel="Bench Channel", duration=float(seconds))
    return Transcript(segs), meta


def input_only(u: Usage) -> Usage:
    return Usage(input_tokens=u.input_tokens, cache_read_tokens=u.cache_read_tokens,
                 cache_write_tokens=u.cache_write_tokens)


def strip_cache(req: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(req)
    for block in out["system"]:
        block.pop("cache_control", None)
    return out


def measure(minutes: int, model: str, state: str) -> dict[str, Any]:
    transcript, meta = lecture(minutes)
    cfg = Config.defaults().to_dict()
    cfg["generate"].update(model=model, retry_max_wait_seconds=0.1)
    ctx = GenerationContext(config=cfg, state_dir=state)
    with FakeAnthropic(model_responder(0.0, 0.0)) as fake:
        os.environ["ANTHROPIC_BASE_URL"] = fake.base_url
        backend = ClaudeBackend(cfg, state)
        cached = backend.generate(transcript, meta, ctx).usage
        prep = backend.prepare(transcript, meta, ctx)
        notes_req, assess_req = backend.requests(prep, ctx)
        dur = prep.duration
        _, u1 = backend.client.call(strip_cache(notes_req), what="study note", parse=(
            lambda r: read_note(r.text, meta, dur, ctx.related_notes)))
        _, u2 = backend.client.call(strip_cache(assess_req), what="assessment", parse=(
            lambda r: read_assessment(r.text, meta, dur, ctx.related_notes)))
        naive = u1.add(u2)
        words = sum(len(s.text.split()) for s in transcript.segments)
    return {"minutes": minutes, "words": words, "cached": cached, "naive": naive,
            "prefix": cached.cache_write_tokens}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, nargs="+", default=[10, 60, 180])
    ap.add_argument("--model", default=MODELS[0])
    ap.add_argument("--quick", action="store_true", help="only the 1-hour transcript")
    args = ap.parse_args()
    if args.quick:
        args.minutes = [60]
    os.environ["ANTHROPIC_API_KEY"] = KEY
    print(f"# bench_cost\n\nMachine: {machine()}")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    results = []
    with tempfile.TemporaryDirectory(prefix="vaultd-bench-cost-") as state:
        for minutes in args.minutes:
            results.append(measure(minutes, args.model, state))

    print(f"Model {args.model}. Tokens as the stand-in reports them (characters / 4), "
          "summed over the notes and assessment calls.\n")
    print("| video | words | cached prefix tok | cached: input / cache write / cache read / out "
          "| naive: input / out | input $ cached | input $ naive | **ratio** | total $ cached "
          "| total $ naive |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        c, n = r["cached"], r["naive"]
        ci, ni = estimate_cost(args.model, input_only(c)), estimate_cost(args.model, input_only(n))
        ct, nt = estimate_cost(args.model, c), estimate_cost(args.model, n)
        print(f"| {r['minutes']} min | {r['words']:,} | {r['prefix']:,} | {c.input_tokens:,} / "
              f"{c.cache_write_tokens:,} / {c.cache_read_tokens:,} / {c.output_tokens:,} | "
              f"{n.input_tokens:,} / {n.output_tokens:,} | {ci:.4f} | {ni:.4f} | "
              f"**{ci / ni:.3f}** | {ct:.4f} | {nt:.4f} |")
    hour = next((r for r in results if r["minutes"] == 60), None)
    if hour is not None:
        print("\nSame 1-hour usage at each family's list price (total = input + output, USD):\n")
        print("| model | input cached | input naive | ratio | total cached | total naive |")
        print("|---|---:|---:|---:|---:|---:|")
        for model in MODELS:
            c, n = hour["cached"], hour["naive"]
            ci, ni = estimate_cost(model, input_only(c)), estimate_cost(model, input_only(n))
            print(f"| {model} | {ci:.4f} | {ni:.4f} | {ci / ni:.3f} | "
                  f"{estimate_cost(model, c):.4f} | {estimate_cost(model, n):.4f} |")
        ratio = estimate_cost(args.model, input_only(hour["cached"])) / estimate_cost(
            args.model, input_only(hour["naive"]))
        verdict = "met" if ratio <= 0.7 else "NOT met"
        print(f"\nTarget cached/naive input cost <= 0.70 at 1 hour: {ratio:.3f} ({verdict}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
