"""Claude through the backend seam, with the real ``anthropic`` SDK against the loopback
Messages stand-in: structured outputs (one shared schema, so the cached prefix stays
shared), a reply off format (salvaged, no second call), a ``max_tokens`` cut (continued:
the second call carries the partial reply as the assistant's turn) and a model without
structured outputs (the text format instead).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import PermanentError

sys.path.insert(0, str(Path(__file__).parent))

from fake_anthropic import FakeAnthropic, Reply, raw, text  # noqa: E402
from test_claude_backend import (  # noqa: E402
    ASSESSMENT,
    KEY,
    NOTE,
    ctx_for,
    make_config,
    make_meta,
    make_transcript,
)

from daemon.generate.claude import ClaudeBackend  # noqa: E402
from daemon.generate.tasks import SHARED_SCHEMA  # noqa: E402

JSON_NOTE = {"tldr": "Gradient descent walks downhill [0:30].", "tags": ["optimisation"],
             "aliases": [], "key_terms": ["loss"],
             "note": "## Key concepts\n- **Learning rate** sets the step size [1:15].\n\n"
                     "## Momentum\n- Momentum smooths the steps [3:00]."}
JSON_ASSESS = {k: [{"question": f"Q {k}?", "answer": f"A [{i + 1}:00]."}]
               for i, k in enumerate(("gap", "application", "further", "synthesis"))}
JSON_ASSESS["flashcards"] = [{"front": "What is a learning rate?", "back": "The step size"}]


def structured(body: dict[str, Any]) -> Reply:
    user = body["messages"][0]["content"]
    has_format = "output_config" in body
    if "study note" in user:
        return text(json.dumps({"reply": JSON_NOTE}) if has_format else NOTE)
    return text(json.dumps({"reply": JSON_ASSESS}) if has_format else ASSESSMENT)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    with FakeAnthropic(structured, min_cache_tokens=100) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        yield fake, tmp_path


def run(tmp: Path):  # noqa: ANN201
    cfg = make_config()
    return ClaudeBackend(cfg, str(tmp)).generate(make_transcript(600), make_meta(600),
                                                 ctx_for(cfg, tmp))


def test_structured_outputs_with_one_schema_keep_the_prefix_cached(env) -> None:
    fake, tmp = env
    c = run(tmp)
    notes, assess = fake.message_requests()
    fmt = {"format": {"type": "json_schema", "schema": SHARED_SCHEMA}}
    assert notes.body["output_config"] == assess.body["output_config"] == fmt
    assert notes.body["system"] == assess.body["system"]
    assert notes.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert c.usage.cache_read_tokens > 0  # the assessment read the transcript from cache
    assert "[1:15](https://youtu.be/abcdefghijk?t=75)" in c.note_markdown
    assert "What is a learning rate?::The step size" in c.assessment_markdown
    assert (c.salvaged, c.continued) == (0, 0)


def test_off_format_reply_is_salvaged_without_a_second_call(env) -> None:
    fake, tmp = env
    fake.queue(text("Here you go!\n\n> [!tldr] TL;DR\n> Downhill on the loss [0:30].\n\n"
                    "## Key concepts\n- Step size [1:15]\n"))
    c = run(tmp)
    assert len(fake.message_requests()) == 2
    assert c.note_markdown.startswith("> [!tldr] TL;DR\n> Downhill on the loss")
    assert c.salvaged == 1


def test_max_tokens_cut_is_continued_with_the_partial_reply(env) -> None:
    fake, tmp = env
    full = json.dumps({"reply": JSON_NOTE})
    fake.queue(Reply(text=full[:120], stop_reason="max_tokens"), text(full[120:]))
    c = run(tmp)
    first, second, _assess = fake.message_requests()
    assert "output_config" in first.body and "output_config" not in second.body
    assert second.body["messages"] == [first.body["messages"][0],
                                       {"role": "assistant", "content": full[:120]}]
    assert "Momentum smooths the steps" in c.note_markdown
    assert (c.continued, c.salvaged) == (1, 0)


def test_model_without_structured_outputs_gets_the_text_format(env) -> None:
    fake, tmp = env
    refusal = {"type": "error", "error": {"type": "invalid_request_error", "message":
               "output_config.format: structured outputs are not supported by this model"}}
    fake.queue(raw(json.dumps(refusal).encode(), status=400))
    c = run(tmp)
    first, notes, assess = fake.message_requests()
    assert "output_config" in first.body
    assert "output_config" not in notes.body and "output_config" not in assess.body
    assert "<tldr>" in notes.body["messages"][0]["content"]
    assert "Learning rate" in c.note_markdown and c.salvaged == 0


def test_a_cut_reply_reused_on_retry_is_still_continued(env) -> None:
    """The job fails after the cut reply was paid for; its retry reuses that reply from
    the reply cache and continues it, instead of taking it as complete."""
    fake, tmp = env
    full = json.dumps({"reply": JSON_NOTE})
    fake.queue(Reply(text=full[:120], stop_reason="max_tokens"),
               *[raw(b'{"type":"error","error":{"type":"invalid_request_error",'
                     b'"message":"fake 400"}}', status=400)])
    with pytest.raises(PermanentError):
        run(tmp)
    assert len(fake.message_requests()) == 2
    fake.queue(text(full[120:]))
    c = run(tmp)
    retry = fake.message_requests()[2:]
    assert len(retry) == 2  # the continuation and the assessment; the cut call is reused
    assert retry[0].body["messages"][-1] == {"role": "assistant", "content": full[:120]}
    assert "Momentum smooths the steps" in c.note_markdown and c.continued == 1
