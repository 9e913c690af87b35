"""The Claude backend driven through the real ``anthropic`` SDK against a loopback fake.

Covers: the cached prefix shared byte for byte by the notes and assessment calls (and the
cache read it earns), retries on 429/529/5xx/mid-stream errors with retry-after honoured
and capped, streaming, malformed and empty replies, chunking of long transcripts, reply
validation (timestamps, links, questions, flashcards), the batch round trip, the API key
rules and the shared concurrency limit.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_anthropic import FakeAnthropic, Reply, error, raw, text  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.errors import (  # noqa: E402
    ConfigError,
    EmptyTranscriptError,
    MalformedReplyError,
    OfflineError,
    RateLimitedError,
    ServiceOverloadedError,
)
from daemon.generate.base import GenerationContext, RelatedNote  # noqa: E402
from daemon.generate.claude import ClaudeBackend  # noqa: E402
from daemon.generate.claude_batch import (  # noqa: E402
    BatchJob,
    BatchTicket,
    collect_batch,
    submit_batch,
)
from daemon.generate.claude_client import ConcurrencySlots  # noqa: E402
from daemon.generate.pricing import (  # noqa: E402
    deprecation_of,
    estimate_cost,
    newest_model,
    sdk_model_table,
)
from vault_tools.models import Chapter, Segment, SourceMeta, Transcript, Usage  # noqa: E402

KEY = "sk-ant-test-SECRET-0123456789"

NOTE = """<meta>
tags: Gradient Descent, optimisation, #machine-learning
aliases: GD
key_terms: learning rate, loss
</meta>
<tldr>
Gradient descent walks downhill on the loss [0:30].
</tldr>
<note>
## Key concepts
- **Learning rate** sets the step size [1:15]. See [[Calculus Basics|the calculus note]].
- Uses [[derivatives]] and [[Unknown Note|some words]] and ![[Embedded Thing]].
- A claim far past the end [99:00].
- Right at the end [10:02].
</note>"""

ASSESSMENT = """<section kind="gap" title="Gap check">
<question>
<ask>What does the learning rate control?</ask>
<answer>The step size [1:15].</answer>
</question>
<question>
<ask>Uncited question?</ask>
<answer>No timestamp here.</answer>
</question>
</section>
<section kind="application" title="Application">
<question><ask>Apply it.</ask><answer>Like this [2:00].</answer></question>
</section>
<section kind="further" title="One step further">
<question><ask>Go further.</ask><answer>Momentum [3:00].</answer></question>
</section>
<section kind="synthesis" title="Synthesis">
<question><ask>Connect.</ask><answer>Both [4:00] and [[Calculus Basics]].</answer></question>
</section>
<flashcards>
What is a learning rate::The step size

What does the loss measure?
?
How wrong the model is.

Gradient descent moves ==against== the gradient. <!--SR:!2026-01-01,3,250-->

this line is not a card
</flashcards>"""


def respond(body: dict[str, Any]) -> Reply:
    user = body["messages"][0]["content"]
    if part := re.search(r"part (\d+) of", user):
        return text(f"### Part notes\n- summary of part {part.group(1)} [0:10]")
    if "study note" in user:
        return text(NOTE)
    if "assessment" in user:
        return text(ASSESSMENT)
    return text("unexpected request")


def make_transcript(seconds: float, step: float = 4.0, words: int = 12) -> Transcript:
    segs = []
    t = 0.0
    i = 0
    while t < seconds:
        segs.append(Segment(t, step, " ".join(f"w{i}x{j}" for j in range(words))))
        t += step
        i += 1
    return Transcript(segs)


def make_meta(duration: float, chapters: list[Chapter] | None = None) -> SourceMeta:
    return SourceMeta(key="youtube:abcdefghijk", kind="youtube", title="Gradient Descent, "
                      "Explained!", url="https://www.youtube.com/watch?v=abcdefghijk",
                      video_id="abcdefghijk", channel="Ch", duration=duration,
                      chapters=chapters or [])


RELATED = [RelatedNote("Calculus Basics", ("derivatives",))]


def make_config(**gen: Any) -> dict[str, dict[str, Any]]:
    cfg = Config.defaults().to_dict()
    cfg["generate"].update({"retry_max_wait_seconds": 0.05, "model": "claude-sonnet-4-6"})
    cfg["generate"].update(gen)
    return cfg


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    with FakeAnthropic(respond) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        yield fake, tmp_path


def ctx_for(cfg: dict[str, dict[str, Any]], tmp: Path, **kw: Any) -> GenerationContext:
    return GenerationContext(config=cfg, state_dir=str(tmp), related_notes=RELATED, **kw)


def test_cached_prefix_is_identical_and_second_call_reads_cache(env) -> None:
    fake, tmp = env
    cfg = make_config()
    transcript = make_transcript(600)
    content = ClaudeBackend(cfg, str(tmp)).generate(transcript, make_meta(600),
                                                     ctx_for(cfg, tmp))
    notes, assessment = fake.message_requests()
    assert notes.body["system"] == assessment.body["system"]
    assert json.dumps(notes.body["system"]) == json.dumps(assessment.body["system"])
    assert notes.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert notes.body["messages"] != assessment.body["messages"]
    prefix = notes.body["system"][-1]["text"]
    assert "[0:00] w0x0" in prefix and "[9:48]" in prefix  # timestamped lines, last cue
    for seg in transcript.segments:
        assert seg.text in prefix
    u = content.usage
    assert u.cache_write_tokens > 1000
    assert u.cache_read_tokens == u.cache_write_tokens  # second call read the whole prefix
    assert 0 < u.cost_usd
    assert content.model == "claude-sonnet-4-6"


def test_notes_timestamps_links_and_tags(env) -> None:
    fake, tmp = env
    cfg = make_config()
    c = ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                              ctx_for(cfg, tmp))
    note = c.note_markdown
    assert note.startswith("> [!tldr] TL;DR\n> Gradient descent walks downhill on the loss "
                           "[0:30](https://youtu.be/abcdefghijk?t=30).")
    assert "[1:15](https://youtu.be/abcdefghijk?t=75)" in note
    assert "99:00" not in note and "t=5940" not in note  # invented time dropped
    assert "[9:59](https://youtu.be/abcdefghijk?t=599)" in note  # 10:02 clamped
    for t in re.findall(r"youtu\.be/abcdefghijk\?t=(\d+)", note + c.assessment_markdown):
        assert int(t) < 600
    assert "[[Calculus Basics|the calculus note]]" in note
    assert "[[Calculus Basics|derivatives]]" in note  # alias resolved to the title
    assert "some words" in note and "Embedded Thing" in note
    assert re.findall(r"\[\[([^|\]]+)", note) == ["Calculus Basics", "Calculus Basics"]
    assert c.tags == ["gradient-descent", "optimisation", "machine-learning"]
    assert c.aliases == ["GD"] and c.key_terms == ["learning rate", "loss"]


def test_assessment_questions_answers_and_flashcards(env) -> None:
    fake, tmp = env
    cfg = make_config()
    a = ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                              ctx_for(cfg, tmp)).assessment_markdown
    heads = re.findall(r"^## (.+)$", a, re.M)
    assert heads == ["Gap check", "Application", "One step further", "Synthesis", "Flashcards"]
    assert a.count("> [!answer]- Answer") == 4  # the uncited question was dropped
    assert "Uncited question" not in a
    assert "> Both [4:00](https://youtu.be/abcdefghijk?t=240) and [[Calculus Basics|Calculus "\
           "Basics]]." in a
    cards = a.split("#flashcards/gradient-descent-explained\n", 1)[1]
    assert "What is a learning rate::The step size" in cards
    assert "What does the loss measure?\n?\nHow wrong the model is." in cards
    assert "==against==" in cards and "<!--SR" not in cards
    assert "not a card" not in cards


def test_streaming_path_for_large_outputs_and_plain_path_for_small(env) -> None:
    fake, tmp = env
    for max_tokens, streamed in ((16000, True), (8000, False)):
        cfg = make_config(max_tokens=max_tokens)
        c = ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                                  ctx_for(cfg, tmp))
        reqs = fake.message_requests()[-2:]
        assert [bool(r.body.get("stream")) for r in reqs] == [streamed, streamed]
        assert "Learning rate" in c.note_markdown
        assert c.usage.output_tokens > 0


def test_429_retry_after_is_honoured_up_to_the_cap(env) -> None:
    fake, tmp = env
    cfg = make_config(retry_max_wait_seconds=0.2)
    fake.queue(error(429, "rate_limit_error", retry_after=30))
    ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                          ctx_for(cfg, tmp))
    first, second = fake.message_requests()[:2]
    gap = second.at - first.at
    assert 0.2 <= gap < 5  # waited the cap, not the 30 s asked for
    assert len(fake.message_requests()) == 3


def test_retry_waits_follow_retry_after_and_cap(env) -> None:
    fake, tmp = env
    waits: list[float] = []
    cfg = make_config(retry_max_wait_seconds=60.0, retry_attempts=3)
    fake.queue(error(429, "rate_limit_error", retry_after=3),
               error(429, "rate_limit_error", retry_after=999))
    ClaudeBackend(cfg, str(tmp), sleep=waits.append).generate(
        make_transcript(600), make_meta(600), ctx_for(cfg, tmp))
    assert waits == [3.0, 60.0]


def test_persistent_429_becomes_transient_rate_limited(env) -> None:
    fake, tmp = env
    cfg = make_config(retry_attempts=3)
    fake.queue(*[error(429, "rate_limit_error", retry_after=7)] * 3)
    with pytest.raises(RateLimitedError) as info:
        ClaudeBackend(cfg, str(tmp), sleep=lambda s: None).generate(
            make_transcript(600), make_meta(600), ctx_for(cfg, tmp))
    assert info.value.transient and info.value.retry_after == 7.0
    assert len(fake.message_requests()) == 3


def test_529_then_success_and_persistent_500(env) -> None:
    fake, tmp = env
    cfg = make_config(retry_attempts=2)
    fake.queue(error(529, "overloaded_error"))
    c = ClaudeBackend(cfg, str(tmp), sleep=lambda s: None).generate(
        make_transcript(600), make_meta(600), ctx_for(cfg, tmp))
    assert len(fake.message_requests()) == 3 and c.note_markdown
    fake.queue(error(500, "api_error"), error(500, "api_error"))
    with pytest.raises(ServiceOverloadedError):
        ClaudeBackend(cfg, str(tmp), sleep=lambda s: None).generate(
            make_transcript(600), make_meta(600), ctx_for(cfg, tmp))


def test_mid_stream_overload_is_retried(env) -> None:
    fake, tmp = env
    cfg = make_config(max_tokens=16000)
    fake.queue(Reply(text=NOTE, stream_error="overloaded_error"))
    c = ClaudeBackend(cfg, str(tmp), sleep=lambda s: None).generate(
        make_transcript(600), make_meta(600), ctx_for(cfg, tmp))
    assert len(fake.message_requests()) == 3 and "Learning rate" in c.note_markdown


def test_connection_refused_is_offline_error(monkeypatch, tmp_path) -> None:
    with FakeAnthropic() as dead:
        url = dead.base_url
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    cfg = make_config(retry_attempts=2)
    with pytest.raises(OfflineError):  # a daemon waits for the network, attempts kept
        ClaudeBackend(cfg, str(tmp_path), sleep=lambda s: None).generate(
            make_transcript(600), make_meta(600), ctx_for(cfg, tmp_path))


@pytest.mark.parametrize("bad", [raw(b"not json{"), text(""), text("no tags at all"),
                                 raw(b'{"type": "message", "content": "oops"}'),
                                 raw(b'[1, 2, 3]')])
def test_malformed_reply_is_retried_once(env, bad: Reply) -> None:
    fake, tmp = env
    cfg = make_config()
    fake.queue(bad)
    c = ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                              ctx_for(cfg, tmp))
    assert len(fake.message_requests()) == 3 and c.note_markdown
    fake.queue(bad, bad)
    with pytest.raises(MalformedReplyError):
        ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                              ctx_for(cfg, tmp))
    assert len(fake.message_requests()) == 5


def test_cut_off_reply_is_continued_not_asked_again(env) -> None:
    fake, tmp = env
    cfg = make_config()
    fake.queue(Reply(text=NOTE[:200], stop_reason="max_tokens"), text(NOTE[200:]))
    c = ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                              ctx_for(cfg, tmp))
    first, second, _assessment = fake.message_requests()
    assert second.body["messages"][-1] == {"role": "assistant",
                                           "content": NOTE[:200].rstrip()}
    assert second.body["messages"][0] == first.body["messages"][0]
    assert "Learning rate" in c.note_markdown and c.continued == 1


def test_empty_transcript_sends_nothing(env) -> None:
    fake, tmp = env
    cfg = make_config()
    with pytest.raises(EmptyTranscriptError):
        ClaudeBackend(cfg, str(tmp)).generate(Transcript([Segment(0, 2, "hi"),
                                                          Segment(2, 2, " ")]),
                                              make_meta(4), ctx_for(cfg, tmp))
    assert fake.requests == []


def test_long_transcript_is_chunked_along_chapters_without_loss(env) -> None:
    fake, tmp = env
    cfg = make_config(context_budget_tokens=3000, small_model="claude-haiku-4-5")
    transcript = make_transcript(3600)
    chapters = [Chapter(0, "Intro"), Chapter(900, "Middle"), Chapter(1800, "Later"),
                Chapter(2700, "End")]
    c = ClaudeBackend(cfg, str(tmp)).generate(transcript, make_meta(3600, chapters),
                                              ctx_for(cfg, tmp))
    reqs = fake.message_requests()
    parts = [r for r in reqs if r.body["model"] == "claude-haiku-4-5"]
    assert len(parts) >= 4 and len(reqs) == len(parts) + 2
    sent = "\n".join(r.body["system"][-1]["text"] for r in parts)
    for seg in transcript.segments:  # every cue reached the model
        assert seg.text in sent
    starts = [re.search(r"from (\S+) to", r.body["messages"][0]["content"]).group(1)
              for r in parts]
    assert {"0:00", "15:00", "30:00", "45:00"} <= set(starts)  # chapter boundaries kept
    final = reqs[-1].body["system"][-1]["text"]
    assert "Detailed notes of the whole video" in final and "w0x0" not in final
    assert all(f"summary of part {i}" in final for i in range(1, len(parts) + 1))
    assert c.usage.input_tokens + c.usage.cache_write_tokens > 0


def test_long_transcript_without_chapters_uses_time_windows(env) -> None:
    fake, tmp = env
    cfg = make_config(context_budget_tokens=3000)
    transcript = make_transcript(3600)
    ClaudeBackend(cfg, str(tmp)).generate(transcript, make_meta(3600), ctx_for(cfg, tmp))
    parts = fake.message_requests()[:-2]
    assert len(parts) >= 2
    sent = [r.body["system"][-1]["text"] for r in parts]
    for seg in transcript.segments:
        assert sum(seg.text in s for s in sent) == 1  # each cue in exactly one part


def test_prompt_override_from_vault(env) -> None:
    fake, tmp = env
    prompts = tmp / "prompts"
    prompts.mkdir()
    (prompts / "notes.md").write_text("Write the study note in $language, briefly.")
    cfg = make_config(language="de")
    ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                          ctx_for(cfg, tmp, prompts_dir=str(prompts)))
    notes, assessment = fake.message_requests()
    assert notes.body["messages"][0]["content"].startswith(
        "Write the study note in de, briefly.\n\nReply with one JSON object")
    assert "learning assessment" in assessment.body["messages"][0]["content"]
    assert 'language with code "de"' in notes.body["system"][0]["text"]


def test_key_never_logged_or_returned(env, caplog) -> None:
    fake, tmp = env
    caplog.set_level(logging.DEBUG)
    cfg = make_config()
    fake.queue(error(429, "rate_limit_error", retry_after=0), raw(b"garbage"))
    c = ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                              ctx_for(cfg, tmp))
    assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"  # it was sent
    assert caplog.records  # logging was on at DEBUG
    assert KEY not in caplog.text and KEY[-10:] not in caplog.text
    assert KEY not in c.to_json()


def test_key_file_must_be_private(monkeypatch, tmp_path) -> None:
    with FakeAnthropic(respond) as fake:
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        key_file = tmp_path / "key"
        key_file.write_text(KEY + "\n")
        key_file.chmod(0o644)
        cfg = make_config(api_key_file=str(key_file))
        with pytest.raises(ConfigError) as info:
            ClaudeBackend(cfg, str(tmp_path))
        assert info.value.setting == "generate.api_key_file" and KEY not in str(info.value)
        key_file.chmod(0o600)
        ClaudeBackend(cfg, str(tmp_path)).generate(make_transcript(600), make_meta(600),
                                                   ctx_for(cfg, tmp_path))
        assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    with pytest.raises(ConfigError):
        ClaudeBackend(make_config(), str(tmp_path))  # no key at all


def test_batch_round_trip(env) -> None:
    fake, tmp = env
    cfg = make_config(context_budget_tokens=8000)
    short = BatchJob("youtube:abcdefghijk", make_transcript(600), make_meta(600),
                     ctx_for(cfg, tmp))
    long = BatchJob("youtube:longlonglon", make_transcript(3600), make_meta(3600),
                    ctx_for(cfg, tmp))
    backend = ClaudeBackend(cfg, str(tmp))
    ticket = BatchTicket.from_json(submit_batch(backend, [short, long]).to_json())
    assert ticket.direct == ["youtube:longlonglon"]
    (create,) = [r for r in fake.requests if r.path == "/v1/messages/batches"]
    reqs = create.body["requests"]
    assert [r["custom_id"] for r in reqs] == ["j0-notes", "j0-assessment"]
    assert reqs[0]["params"]["system"] == reqs[1]["params"]["system"]
    assert collect_batch(backend, ticket, [short, long]) is None  # still processing
    results = collect_batch(backend, ticket, [short, long])
    assert results is not None and set(results) == {"youtube:abcdefghijk"}
    content = results["youtube:abcdefghijk"]
    assert not isinstance(content, Exception)
    assert "[1:15](https://youtu.be/abcdefghijk?t=75)" in content.note_markdown
    assert "#flashcards/" in content.assessment_markdown
    u = content.usage
    assert u.cache_write_tokens > 0 and u.output_tokens > 0
    full = estimate_cost("claude-sonnet-4-6", Usage(u.input_tokens, u.output_tokens,
                                                    u.cache_read_tokens, u.cache_write_tokens))
    assert u.cost_usd == pytest.approx(full / 2, abs=1e-6)  # batch discount


def test_batch_errored_result_maps_to_job_error(env) -> None:
    fake, tmp = env
    cfg = make_config()
    job = BatchJob("youtube:abcdefghijk", make_transcript(600), make_meta(600),
                   ctx_for(cfg, tmp))
    fake.batch_polls = 0
    fake.queue(text(NOTE), error(529, "overloaded_error"))
    backend = ClaudeBackend(cfg, str(tmp))
    results = collect_batch(backend, submit_batch(backend, [job]), [job])
    assert isinstance(results["youtube:abcdefghijk"], ServiceOverloadedError)


def test_concurrency_slots_are_shared(tmp_path) -> None:
    slots = ConcurrencySlots(tmp_path, 2)
    other_worker = ConcurrencySlots(tmp_path, 2)
    with slots.hold() as a, other_worker.hold() as b:
        assert {a, b} == {0, 1}
        with pytest.raises(ServiceOverloadedError):
            with ConcurrencySlots(tmp_path, 2, sleep=lambda s: None).hold(timeout=0):
                pass
    with other_worker.hold() as c:
        assert c == 0
    assert sorted(os.listdir(tmp_path / "claude-slots")) == ["slot-0.lock", "slot-1.lock"]


def test_newest_model_skips_deprecated_and_older() -> None:
    # Our logic on a table the test supplies: the SDK's own table changes with each release.
    ids = ("claude-sonnet-4-0", "claude-sonnet-4-5", "claude-sonnet-4-6", "claude-sonnet-5",
           "claude-haiku-4-5", "claude-3-7-sonnet-latest", "claude-sonnet-4-5-20250929")
    deprecated = {"claude-sonnet-5": "2027-01-01", "claude-sonnet-4-0": "2026-06-01"}
    assert newest_model("sonnet", (ids, deprecated)) == "claude-sonnet-4-6"
    assert newest_model("haiku", (ids, deprecated)) == "claude-haiku-4-5"
    assert newest_model("opus", (ids, deprecated)) is None
    assert newest_model("sonnet", (ids, {})) == "claude-sonnet-5"
    assert deprecation_of("claude-sonnet-5", deprecated) == "2027-01-01"
    assert deprecation_of("claude-sonnet-4-6", deprecated) is None


def test_model_table_is_read_from_the_installed_sdk() -> None:
    ids, deprecated = sdk_model_table()
    assert any(i.startswith("claude-") for i in ids)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in deprecated.items())
    sonnet = newest_model("sonnet")
    assert sonnet is None or deprecation_of(sonnet) is None
