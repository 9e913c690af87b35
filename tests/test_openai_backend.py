"""The OpenAI-compatible backend driven through the real ``openai`` SDK against a
loopback server (tests/fake_openai.py): structured output per server capability,
streaming and plain calls, retries, a reply that ignores the schema (salvaged, not paid
twice), a reply cut at the length limit (continued), a missing model, and chunking to the
configured context window.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_openai import FakeOpenAI, Reply, error, text  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.errors import (  # noqa: E402
    MalformedReplyError,
    PermanentError,
    ServiceOverloadedError,
)
from daemon.generate.base import GenerationContext, RelatedNote  # noqa: E402
from daemon.generate.openai_backend import OpenAIBackend  # noqa: E402
from daemon.generate.source_text import estimate_tokens  # noqa: E402
from daemon.generate.tasks import ASSESSMENT_SCHEMA, NOTES_SCHEMA  # noqa: E402
from vault_tools.models import Segment, SourceMeta, Transcript  # noqa: E402

MODEL = "llama3.1:8b"
NOTE = {"tldr": "Gradient descent walks downhill on the loss [0:30].",
        "tags": ["Gradient Descent", "optimisation"], "aliases": ["GD"],
        "key_terms": ["learning rate"],
        "note": "## Key concepts\n- **Learning rate** sets the step size [1:15]. See "
                "[[Calculus Basics|the calculus note]].\n- Made up [99:00].\n\n"
                "## Momentum\n- Momentum smooths steps [3:00]."}
ASSESS = {k: [{"question": f"A {k} question?", "answer": f"Because of this [{i + 1}:00]."}]
          for i, k in enumerate(("gap", "application", "further", "synthesis"))}
ASSESS["flashcards"] = [{"front": "What is a learning rate?", "back": "The step size"},
                        {"front": "Momentum does what?", "back": "Smooths the steps"}]
TAGGED_NOTE = ("<meta>\ntags: gd\naliases:\nkey_terms: loss\n</meta>\n<tldr>\nDownhill "
               "[0:30].\n</tldr>\n<note>\n## Key concepts\n- Step size [1:15].\n</note>")
TAGGED_ASSESS = "\n".join(
    f'<section kind="{k}" title="T"><question><ask>Q {k}?</ask><answer>A [2:00].</answer>'
    "</question></section>" for k in ("gap", "application", "further", "synthesis")
) + "\n<flashcards>\nWhat is GD?::Descent\n</flashcards>"


def user_of(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def respond(body: dict[str, Any]) -> Reply:
    user = user_of(body)
    structured = "response_format" in body
    if part := re.search(r"part (\d+) of", user):
        return text(f"### Part notes\n- summary of part {part.group(1)} [0:10]")
    if "study note" in user:
        return text(json.dumps(NOTE) if structured else TAGGED_NOTE)
    if "assessment" in user:
        return text(json.dumps(ASSESS) if structured else TAGGED_ASSESS)
    return text("unexpected request")


def make_transcript(seconds: float, step: float = 4.0, words: int = 12) -> Transcript:
    segs, t, i = [], 0.0, 0
    while t < seconds:
        segs.append(Segment(t, step, " ".join(f"w{i}x{j}" for j in range(words))))
        t += step
        i += 1
    return Transcript(segs)


def make_meta(duration: float) -> SourceMeta:
    return SourceMeta(key="youtube:abcdefghijk", kind="youtube", title="Gradient Descent",
                      url="https://www.youtube.com/watch?v=abcdefghijk",
                      video_id="abcdefghijk", channel="Ch", duration=duration)


def setup(fake: FakeOpenAI, tmp: Path, **section: Any) -> tuple[OpenAIBackend,
                                                                 GenerationContext, list]:
    cfg = Config.defaults().to_dict()
    cfg["generate"].update({"retry_max_wait_seconds": 5.0, "retry_attempts": 3})
    cfg["openai"].update({"base_url": fake.base_url, "model": MODEL, **section})
    waits: list[float] = []
    backend = OpenAIBackend(cfg, str(tmp), sleep=waits.append)
    ctx = GenerationContext(config=cfg, state_dir=str(tmp),
                            related_notes=[RelatedNote("Calculus Basics")])
    return backend, ctx, waits


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


def test_json_schema_reply_becomes_note_and_assessment(tmp_path: Path) -> None:
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    notes, assess = fake.chat_requests()
    fmt = notes.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == NOTES_SCHEMA
    assert assess.body["response_format"]["json_schema"]["schema"] == ASSESSMENT_SCHEMA
    assert notes.body["messages"][0] == assess.body["messages"][0]  # one shared prefix
    assert notes.body["stream"] is True  # 2048 output tokens: streamed
    assert "[1:15](https://youtu.be/abcdefghijk?t=75)" in c.note_markdown
    assert "99:00" not in c.note_markdown  # invented moment dropped
    assert "[[Calculus Basics|the calculus note]]" in c.note_markdown
    assert c.tags == ["gradient-descent", "optimisation"]
    assert "What is a learning rate?::The step size" in c.assessment_markdown
    assert "> [!answer]- Answer" in c.assessment_markdown
    assert c.usage.input_tokens > 0 and c.usage.output_tokens > 0 and c.usage.cost_usd == 0
    assert (c.salvaged, c.continued, c.model) == (0, 0, MODEL)


def test_plain_call_below_the_stream_threshold_and_configured_price(tmp_path: Path) -> None:
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path, max_output_tokens=1000,
                                input_price_per_mtok=1.0, output_price_per_mtok=2.0)
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    assert all("stream" not in r.body for r in fake.chat_requests())
    expected = (c.usage.input_tokens * 1.0 + c.usage.output_tokens * 2.0) / 1e6
    assert c.usage.cost_usd == pytest.approx(expected) and c.usage.cost_usd > 0


@pytest.mark.parametrize("status", [400, 500])
def test_server_without_json_schema_falls_back_to_json_object(tmp_path: Path,
                                                             status: int) -> None:
    with FakeOpenAI(respond, formats=("json_object",), refuse_status=status) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    kinds = [r.body.get("response_format", {}).get("type") for r in fake.chat_requests()]
    assert kinds == ["json_schema", "json_object", "json_object"]  # learnt once
    assert "Smooths the steps" in c.assessment_markdown


def test_server_without_json_mode_gets_the_text_format(tmp_path: Path) -> None:
    with FakeOpenAI(respond, formats=()) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    reqs = fake.chat_requests()
    assert len(reqs) == 4 and "response_format" not in reqs[-1].body
    assert "<tldr>" in user_of(reqs[-1].body) or "<section" in user_of(reqs[-1].body)
    assert "Descent" in c.assessment_markdown and c.salvaged == 0


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    with FakeOpenAI(respond) as fake:
        backend, ctx, waits = setup(fake, tmp_path)
        fake.queue(error(429, retry_after=3))
        backend.generate(make_transcript(600), make_meta(600), ctx)
    assert waits == [3.0] and len(fake.chat_requests()) == 3


def test_persistent_500_is_transient_after_the_tries(tmp_path: Path) -> None:
    with FakeOpenAI(respond) as fake:
        backend, ctx, waits = setup(fake, tmp_path)
        fake.queue(error(500), error(500), error(500))
        with pytest.raises(ServiceOverloadedError) as info:
            backend.generate(make_transcript(600), make_meta(600), ctx)
    assert info.value.transient and len(waits) == 2 and len(fake.chat_requests()) == 3


def test_request_tries_are_logged_as_such_by_the_shared_policy(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The request's tries (generate.retry_attempts) are not the job's attempts: the log
    says which count it is, under the neutral retry module, not a Claude logger."""
    with FakeOpenAI(respond) as fake, caplog.at_level("INFO"):
        backend, ctx, _ = setup(fake, tmp_path)
        fake.queue(error(500), error(500), error(500))
        with pytest.raises(ServiceOverloadedError):
            backend.generate(make_transcript(600), make_meta(600), ctx)
    retry = [r for r in caplog.records if "retry" in r.name or "claude" in r.name]
    assert {r.name for r in retry} == {"daemon.generate.retry_policy"}
    text = "\n".join(r.getMessage() for r in retry)
    assert "(request try 2 of 3)" in text and "(request try 3 of 3)" in text
    assert "request tried 3 times (generate.retry_attempts)" in text
    assert "the job gets it back" in text and "giving up" not in text


def test_reply_ignoring_the_schema_is_salvaged_without_a_second_call(tmp_path: Path) -> None:
    markdown = ("Sure! Here is your note.\n\n**TL;DR:** Gradient descent walks downhill "
                "[0:30].\n\n## Key concepts\n- Step size [1:15]\n\n## Momentum\n- Smooth "
                "[3:00]\n")
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        fake.queue(text(markdown))
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    assert len(fake.chat_requests()) == 2  # notes once, assessment once
    assert c.note_markdown.startswith("> [!tldr] TL;DR\n> Gradient descent walks downhill")
    assert "## Momentum" in c.note_markdown and c.salvaged == 1


def test_reply_cut_at_the_length_limit_is_continued(tmp_path: Path) -> None:
    full = json.dumps(NOTE)
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        fake.queue(text(full[:150], finish_reason="length"), text(full[150:]))
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    first, second, _assess = fake.chat_requests()
    assert second.body["messages"][:2] == first.body["messages"]
    assert second.body["messages"][2] == {"role": "assistant", "content": full[:150]}
    assert "Momentum smooths steps" in c.note_markdown
    assert c.continued == 1 and c.salvaged == 0


def test_reply_with_nothing_usable_is_asked_once_more_then_fails(tmp_path: Path) -> None:
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        fake.queue(text("I cannot help with that."), text("Still nothing."))
        with pytest.raises(MalformedReplyError) as info:
            backend.generate(make_transcript(600), make_meta(600), ctx)
    assert len(fake.chat_requests()) == 2
    assert info.value.usage.input_tokens > 0  # both attempts are accounted


def test_missing_model_names_the_pull_line(tmp_path: Path) -> None:
    with FakeOpenAI(respond, models={"other:7b"}) as fake:
        backend, ctx, waits = setup(fake, tmp_path)
        with pytest.raises(PermanentError, match=f"ollama pull {MODEL}"):
            backend.generate(make_transcript(600), make_meta(600), ctx)
    assert len(fake.chat_requests()) == 1 and waits == []


def test_long_transcript_is_chunked_to_the_configured_window(tmp_path: Path) -> None:
    window = 4096
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path, context_window_tokens=window,
                                max_output_tokens=1024)
        c = backend.generate(make_transcript(1800), make_meta(1800), ctx)
    reqs = fake.chat_requests()
    parts = [r for r in reqs if re.search(r"part \d+ of", user_of(r.body))]
    assert len(parts) >= 3 and len(reqs) == len(parts) + 2
    for r in reqs:  # every request fits the window with its output allowance
        prompt = sum(estimate_tokens(m["content"]) for m in r.body["messages"])
        assert prompt + r.body["max_tokens"] <= window, prompt
    assert "summary of part" not in c.note_markdown  # the digest replaced the transcript
    assert "w0x0" not in reqs[-1].body["messages"][0]["content"]


def test_server_that_answers_anew_instead_of_continuing(tmp_path: Path) -> None:
    """Some servers ignore a final assistant turn and start over: the new whole answer
    is used, not paid for a third time."""
    full = json.dumps(NOTE)
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        fake.queue(text(full[:150], finish_reason="length"), text(full))
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    assert len(fake.chat_requests()) == 3
    assert "Momentum smooths steps" in c.note_markdown and c.continued == 1


def test_vault_prompt_override_is_used_by_the_openai_backend(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "notes.md").write_text("Write the study note in $language, for a child.")
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        ctx.prompts_dir = str(prompts)
        backend.generate(make_transcript(600), make_meta(600), ctx)
    notes = fake.chat_requests()[0]
    assert user_of(notes.body).startswith("Write the study note in en, for a child.\n\n"
                                          "Reply with one JSON object")


def test_usage_is_estimated_when_the_server_reports_none(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: Reply(text=respond(body).text, usage=False)) as fake:
        backend, ctx, _ = setup(fake, tmp_path)
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
    prompt_chars = sum(len(m["content"]) for r in fake.chat_requests()
                       for m in r.body["messages"])
    assert c.usage.input_tokens == pytest.approx(prompt_chars / 3.5, rel=0.01)
    assert c.usage.output_tokens > 0


def test_garbled_body_is_asked_once_more_then_fails(tmp_path: Path) -> None:
    with FakeOpenAI(respond) as fake:
        backend, ctx, _ = setup(fake, tmp_path, max_output_tokens=1000)  # plain calls
        fake.queue(Reply(raw_body=b"not json{"))
        c = backend.generate(make_transcript(600), make_meta(600), ctx)
        assert len(fake.chat_requests()) == 3 and "Key concepts" in c.note_markdown
        fake.queue(Reply(raw_body=b"not json{"), Reply(raw_body=b"<html>"))
        with pytest.raises(MalformedReplyError):
            backend.generate(make_transcript(600), make_meta(600), ctx)
    assert len(fake.chat_requests()) == 5
