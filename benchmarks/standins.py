"""Shared helpers for the benchmarks: latency-adding stand-ins, generated videos, machine info.

Wraps the loopback test doubles in ``tests/`` (``fake_youtube.FakeYouTube`` and
``fake_anthropic.FakeAnthropic``, both driven by the real youtube-transcript-api and the
real ``anthropic`` SDK) and adds what a benchmark needs on top:

* :class:`SlowYouTube`: the YouTube stand-in serving any number of generated videos, with
  the transcript latency added to the timedtext request (the fetch's last step);
* :func:`model_responder`: a Messages API responder that sleeps the notes / assessment
  latency and answers in the reply format vaultd parses, citing real moments of the
  transcript it was sent (so validation keeps the content and usage is realistic);
* :func:`machine`, :func:`rss_kb`, :func:`pct`: bookkeeping for the recorded results.

Nothing here touches the product; it only plays the third-party services.
"""

from __future__ import annotations

import os
import platform
import random
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_anthropic import FakeAnthropic, Reply, text  # noqa: E402
from fake_youtube import Cue, FakeYouTube, Hit, Video  # noqa: E402
from machineinfo import cpu_model  # noqa: E402

__all__ = ["FakeAnthropic", "SlowYouTube", "make_video", "model_responder", "machine",
           "rss_kb", "pct", "video_id", "KEY", "MODEL", "lecture_sentences"]

KEY = "sk-ant-bench-0123456789abcdef"
MODEL = "claude-sonnet-5-5"

TOPICS = ["photosynthesis", "memory consolidation", "gradient descent", "plate tectonics",
          "supply and demand", "enzyme kinetics", "harmonic series", "recursion",
          "glacial erosion", "representative democracy", "entropy", "vaccination",
          "orbital mechanics", "sorting algorithms", "classical rhetoric", "inflation"]
VERBS = ["explains", "changes", "drives", "limits", "shapes", "stores", "releases",
         "connects", "predicts", "measures"]
NOUNS = ["energy", "the feedback loop", "the system", "a signal", "pressure", "the model",
         "structure", "time", "information", "balance", "the process", "variation"]


def video_id(i: int, prefix: str = "bv") -> str:
    """An 11-character YouTube-style id, unique per ``i``."""
    return f"{prefix}{i:0{11 - len(prefix)}d}"


def lecture_sentences(topic: str, n: int, seed: int) -> list[str]:
    rng = random.Random(f"{topic}-{seed}")
    return [f"In this part about {topic}, {rng.choice(NOUNS)} {rng.choice(VERBS)} "
            f"{rng.choice(NOUNS)} because {rng.choice(NOUNS)} {rng.choice(VERBS)} "
            f"{rng.choice(NOUNS)}." for _ in range(n)]


def make_video(i: int, seconds: int = 600, prefix: str = "bv") -> Video:
    """A lecture of ``seconds`` length with a cue every 5 s and chapters in the description."""
    topic = TOPICS[i % len(TOPICS)]
    sentences = lecture_sentences(topic, max(seconds // 5, 4), i)
    cues = [Cue(round(j * 5.0 + 0.3, 2), 4.6, s) for j, s in enumerate(sentences)]
    marks = "\n".join(f"{m // 60}:{m % 60:02d} Part {k + 1}"
                      for k, m in enumerate(range(0, seconds - 30, max(seconds // 4, 60))))
    return Video(video_id(i, prefix), f"Lecture {i}: {topic.title()}", "Bench Channel",
                 seconds, f"A lecture on {topic}.\n\nChapters:\n{marks}\n", cues,
                 [topic, "lecture"])


class SlowYouTube(FakeYouTube):
    """The YouTube stand-in with ``transcript_seconds`` added to each caption download."""

    def __init__(self, videos: dict[str, Video], transcript_seconds: float) -> None:
        super().__init__(videos)
        self.transcript_seconds = transcript_seconds

    def _record(self, hit: Hit) -> None:  # runs in the handler thread, before the reply
        super()._record(hit)
        if hit.path == "/api/timedtext" and hit.status == 200:
            time.sleep(self.transcript_seconds)


# --------------------------------------------------------------------------- fake model

_STAMP = re.compile(r"^\[([\d:]+)\] (.+)$", re.M)


def _gist(words: str, n: int = 12) -> str:
    return " ".join(words.split()[:n]).rstrip(".,;:!?")


def _lines(body: dict[str, Any]) -> list[tuple[str, str]]:
    block = body["system"][-1]["text"]
    transcript = block.split("\n## Transcript\n", 1)[-1]
    found = _STAMP.findall(transcript)
    return found or [("0:00", "the video")]


def note_reply(lines: list[tuple[str, str]], out_tokens: int) -> str:
    """A study note citing moments of the transcript, about ``out_tokens`` long."""
    out = ["## Key concepts"]
    step = max(len(lines) // 40, 1)
    for ts, w in lines[::step]:
        out.append(f"- {_gist(w)} [{ts}]")
        if sum(len(x) for x in out) > out_tokens * 4:
            break
    return (f"<meta>\ntags: study, lecture notes\naliases:\nkey_terms: {_gist(lines[0][1], 3)}"
            f"\n</meta>\n<tldr>\n{_gist(lines[0][1])} [{lines[0][0]}].\n</tldr>\n<note>\n"
            + "\n".join(out) + "\n</note>")


def assessment_reply(lines: list[tuple[str, str]], out_tokens: int) -> str:
    kinds = [("gap", "Gap check"), ("application", "Application"),
             ("further", "One step further"), ("synthesis", "Synthesis")]
    per = max(out_tokens // 4 // 60, 1)  # ~60 tokens a question
    sections = []
    for i, (kind, title) in enumerate(kinds):
        qs = []
        for q in range(per):
            a = lines[(7 * i + 3 * q + 1) % len(lines)]
            qs.append(f"<question>\n<ask>What does the video say about {_gist(a[1], 6)}?</ask>\n"
                      f"<answer>{_gist(a[1])} [{a[0]}].</answer>\n</question>")
        sections.append(f'<section kind="{kind}" title="{title}">\n' + "\n".join(qs)
                        + "\n</section>")
    first, last = lines[0], lines[-1]
    cards = (f"What opens the video?::{_gist(first[1], 8)} [{first[0]}]\n\n"
             f"How does the video end?\n?\n{_gist(last[1], 10)} [{last[0]}]")
    return "\n".join(sections) + f"\n<flashcards>\n{cards}\n</flashcards>"


def model_responder(notes_seconds: float, assessment_seconds: float, *,
                    notes_tokens: int = 2000, assessment_tokens: int = 1200) -> Any:
    """A FakeAnthropic responder with latency and replies vaultd accepts."""

    def respond(body: dict[str, Any]) -> Reply:
        user = body["messages"][0]["content"]
        lines = _lines(body)
        if user.startswith("Write the study note"):
            time.sleep(notes_seconds)
            return text(note_reply(lines, notes_tokens))
        if user.startswith("Write a learning assessment"):
            time.sleep(assessment_seconds)
            return text(assessment_reply(lines, assessment_tokens))
        time.sleep(notes_seconds)
        return text(f"### Part notes\n- {_gist(lines[0][1])} [{lines[0][0]}]")

    return respond


# --------------------------------------------------------------------------- bookkeeping


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    """Direct and indirect children of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        todo += kids
    return out


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def machine() -> str:
    cpu = cpu_model()
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()
    return (f"nproc={os.cpu_count()}, CPU \"{cpu}\", RAM {mem}, Python "
            f"{platform.python_version()}, load average at start {load[0]:.2f}, "
            f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
