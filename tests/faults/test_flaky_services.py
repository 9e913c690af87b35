"""Flaky services: a model API in a bad mood and a YouTube that blocks us for a while.

``vaultd run --once`` (a subprocess, Claude backend through the real ``anthropic`` SDK)
talks to loopback stand-ins (:mod:`tests.fake_anthropic`, :mod:`tests.fake_youtube`):

* the model API opens with a 429 storm (every request, ``retry-after``), then each call
  (one video's notes or assessment) meets its own seeded plan of 429, 529, 500, slow
  replies, replies slower than the request timeout, truncated JSON and empty text
  (at most one unusable reply per call: two in a row fail a job by design);
* YouTube answers some videos' first watch-page requests with the captcha page
  (``IpBlocked``) or 429 + Retry-After.

With small backoffs in the vault config every job waits and completes: the only failure
is the video without captions, which must fail, with its plain reason. Every token the
stand-in billed is accounted in the ledger, and nothing is paid for twice.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.faults.common import (
    USER_TEXT,
    make_lectures,
    read_jobs,
    scales,
    seeded_rng,
    write_config,
)
from tests.helpers import status_json, vaultd, vaultd_env
from vault_tools.inbox import parse_inbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fake_anthropic import FakeAnthropic, Reply, error, raw, text  # noqa: E402
from fake_youtube import FakeYouTube, Video, catalogue, spread  # noqa: E402

KEY = "sk-ant-test-FAULTS-0123456789abcdef"
MODEL = "claude-sonnet-5-5"
TIMEOUT = 2.0  # generate.request_timeout_seconds


@dataclass(frozen=True)
class Size:
    videos: int  # extra videos besides the stand-in's catalogue
    storm: int  # requests answered 429 at the start, whoever sends them
    blocked: int  # videos YouTube blocks for a while


SIZES = {"reduced": Size(3, 6, 2), "full": Size(14, 30, 8)}
FAULTS = ["429", "529", "500", "too-slow"]  # then, for some calls, a slow good reply
MALFORMED = ["truncated", "empty"]


def make_video(i: int) -> Video:
    sentences = [f"In part {j} of lecture {i} the speaker explains idea {j} with an example "
                 f"about topic {i}, and why it matters for the exam." for j in range(24)]
    return Video(f"faultVid{i:03d}"[:11], f"Fault lecture {i}", "Stand-in Channel", 300,
                 f"Lecture {i} of the fault suite.", spread([(0, sentences)], 300),
                 ["faults"])


def note_reply() -> str:
    return ("<meta>\ntags: faults, study\naliases:\nkey_terms: idea, example\n</meta>\n"
            "<tldr>\nThe speaker explains several ideas [0:10].\n</tldr>\n<note>\n"
            "## Ideas\n- The first idea comes with an example [0:12].\n"
            "- Why it matters for the exam [0:40].\n</note>")


def assessment_reply() -> str:
    sections = "\n".join(
        f'<section kind="{kind}">\n<question>\n<ask>What is said about idea {i}?</ask>\n'
        f"<answer>It is explained with an example [0:{10 + i * 5}].</answer>\n"
        "</question>\n</section>"
        for i, kind in enumerate(("gap", "application", "further", "synthesis")))
    return f"{sections}\n<flashcards>\nWhat comes with each idea?::An example [0:12]\n" \
           "</flashcards>"


TRUNCATED = b'{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","con'


class FlakyModel(FakeAnthropic):
    """The stand-in with a fault plan per call, and a record of every billed usage."""

    def __init__(self, storm: int, plans: dict[tuple[str, str], list[str]],
                 slow: set[tuple[str, str]]) -> None:
        super().__init__(self.respond)
        self.storm = storm
        self.plans = plans
        self.slow = slow
        self.tries: Counter[tuple[str, str]] = Counter()
        self.served: Counter[str] = Counter()
        self.billed: list[tuple[tuple[str, str], dict[str, int]]] = []
        # The abandoned replies themselves, not their id(): an id is reused once its
        # object is freed, and a later good reply must not pass for an abandoned one.
        self.abandoned: list[Reply] = []
        self.lock = threading.Lock()

    @staticmethod
    def call_of(body: dict[str, Any]) -> tuple[str, str]:
        system = body["system"][-1]["text"]
        title = re.search(r"^# Video: (.+)$", system, re.M)
        user = body["messages"][0]["content"]
        kind = "assessment" if user.startswith("Write a learning assessment") else "notes"
        return (title.group(1) if title else "?"), kind

    def respond(self, body: dict[str, Any]) -> Reply:
        call = self.call_of(body)
        with self.lock:
            n = sum(self.served.values())
            fault = "storm" if n < self.storm else None
            if fault is None:
                plan = self.plans.get(call, [])
                k = self.tries[call]
                self.tries[call] += 1
                fault = plan[k] if k < len(plan) else "slow" if call in self.slow else "ok"
            self.served[fault] += 1
        if fault == "storm":
            return error(429, "rate_limit_error", retry_after=0.3)
        if fault == "429":
            return error(429, "rate_limit_error", retry_after=0.2)
        if fault == "529":
            return error(529, "overloaded_error")
        if fault == "500":
            return error(500, "api_error")
        if fault == "truncated":
            return raw(TRUNCATED)
        if fault == "empty":
            return text("")
        reply = text(note_reply() if call[1] == "notes" else assessment_reply())
        if fault in ("slow", "too-slow"):
            time.sleep(TIMEOUT * (0.4 if fault == "slow" else 1.5))
        if fault == "too-slow":  # the client gave up: it never learns of this usage
            with self.lock:
                self.abandoned.append(reply)
        return reply

    def message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        msg = super().message(body, reply)
        with self.lock:
            if not any(r is reply for r in self.abandoned):
                self.billed.append((self.call_of(body), msg["usage"]))
        return msg


def fault_plans(rng: Any, titles: list[str]) -> dict[tuple[str, str], list[str]]:
    plans = {}
    for title in titles:
        for kind in ("notes", "assessment"):
            plan = [rng.choice(FAULTS) for _ in range(rng.randrange(4))]
            if rng.random() < 0.5:
                plan.insert(rng.randrange(len(plan) + 1), rng.choice(MALFORMED))
            plans[(title, kind)] = plan
    return plans


@pytest.mark.parametrize("scale", scales())
def test_storms_and_blocks_wait_then_complete(tmp_path: Path, scale: str) -> None:
    size = SIZES[scale]
    rng, _seed = seeded_rng("flaky services")
    videos = catalogue()
    videos.pop("goneForGood")
    for i in range(size.videos):
        video = make_video(i)
        videos[video.video_id] = video
    ok = [v for v in videos.values() if v.mode == "ok"]
    for video in rng.sample(ok, min(size.blocked, len(ok))):
        video.blocks = [rng.choice(["recaptcha", "429"]) for _ in range(rng.randint(1, 3))]
    plans = fault_plans(rng, [v.title for v in ok])
    slow = {call for call in plans if rng.random() < 0.3}
    print("fault plans:", {f"{t}/{k}": p for (t, k), p in plans.items() if p})

    vault, state = tmp_path / "vault", tmp_path / "state"
    write_config(vault, {
        "daemon": {"workers": 2, "debounce_seconds": 0.1, "backoff_base_seconds": 0.2,
                   "backoff_max_seconds": 1.0, "max_attempts": 8},
        "generate": {"backend": "claude", "model": MODEL, "retry_attempts": 3,
                     "retry_max_wait_seconds": 0.5, "request_timeout_seconds": TIMEOUT},
        "youtube": {"min_request_interval_seconds": 0.02, "timeout_seconds": 5.0},
        "pdf": {"enabled": False},
    })
    lines = [f"- https://www.youtube.com/watch?v={vid}" for vid in videos]
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines) + "\n", encoding="utf-8")

    with FakeYouTube(videos) as yt, FlakyModel(size.storm, plans, slow) as model:
        env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=model.base_url,
                         VAULTD_YOUTUBE_ORIGIN=yt.origin)
        proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=600)
        (tmp_path / "daemon.log").write_text(proc.stderr, encoding="utf-8")
        assert proc.returncode == 0, proc.stderr[-4000:]
        st = status_json(vault, env)
        # Each blocked video got past every block (and was asked for again after it).
        for video in videos.values():
            if video.blocks:
                watch = yt.hits_for(video.video_id, "/watch")
                assert len(watch) >= len(video.blocks) + 1, (video.video_id, video.blocks)

    log = proc.stderr
    assert "Traceback" not in log and KEY not in log
    # Only the video that has no captions fails, and says why in plain words.
    assert st["counts"]["failed"] == 1, st["failures"]
    assert [f["key"] for f in st["failures"]] == ["youtube:noCaptions1"]
    assert st["counts"]["done"] == len(ok)
    by_id = {line.body.rsplit("=", 1)[1]: line.annotation
             for line in parse_inbox((vault / "inbox.md").read_text(encoding="utf-8"))}
    assert by_id.pop("noCaptions1").startswith(" — ❌ failed: This video has subtitles turned off")
    assert all(a.startswith(" — ✅ [[") for a in by_id.values()), by_id

    # Every fault was really served, and every call got through its whole plan.
    for fault in ("storm", *{f for p in plans.values() for f in p}, *(["slow"] if slow else [])):
        assert model.served[fault] >= 1, (fault, model.served)
    for call, plan in plans.items():
        assert model.tries[call] >= len(plan) + 1, (call, plan, model.tries[call])

    # The ledger never counts more than was billed (what it misses when a job is retried
    # after a partly successful attempt: see the test below).
    recorded, billed = ledger_usage(state), billed_usage(model)
    assert all(recorded[k] <= billed[k] for k in recorded), (recorded, billed)


def ledger_usage(state: Path) -> dict[str, int]:
    jobs = read_jobs(state).values()
    return {"input_tokens": sum(j["input_tokens"] for j in jobs),
            "output_tokens": sum(j["output_tokens"] for j in jobs),
            "cache_read_input_tokens": sum(j["cache_read_tokens"] for j in jobs),
            "cache_creation_input_tokens": sum(j["cache_write_tokens"] for j in jobs)}


def billed_usage(model: FlakyModel) -> dict[str, int]:
    billed = Counter[str]()
    for _call, usage in model.billed:
        billed.update(usage)
    return {k: billed[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                   "cache_creation_input_tokens")}


def test_a_retried_job_pays_each_call_once_and_accounts_every_token(tmp_path: Path) -> None:
    """Notes call succeeds; the assessment call meets 529 until its tries run out, so the
    job waits and is retried. The notes must not be bought twice, and every billed
    token must be in the ledger (the daily budget and `vaultd status` rely on it)."""
    vault, state = tmp_path / "vault", tmp_path / "state"
    lines = make_lectures(vault, 1, sentences=30)
    write_config(vault, {
        "daemon": {"workers": 1, "debounce_seconds": 0.1, "backoff_base_seconds": 0.2,
                   "backoff_max_seconds": 0.5, "max_attempts": 8},
        "generate": {"backend": "claude", "model": MODEL, "retry_attempts": 2,
                     "retry_max_wait_seconds": 0.2, "request_timeout_seconds": TIMEOUT},
        "pdf": {"enabled": False},
    })
    (vault / "inbox.md").write_text(USER_TEXT + lines[0] + "\n", encoding="utf-8")
    title = "Photosynthesis 000"
    with FlakyModel(0, {(title, "assessment"): ["529", "529"]}, set()) as model:
        env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=model.base_url)
        proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
    assert model.tries[(title, "assessment")] == 3, model.tries  # the plan was played
    assert status_json(vault, env)["counts"]["done"] == 1
    paid = Counter(call for call, usage in model.billed if usage["output_tokens"] > 1)
    assert paid == {(title, "notes"): 1, (title, "assessment"): 1}, paid
    assert ledger_usage(state) == billed_usage(model)
