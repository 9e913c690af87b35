"""Topic synthesis with a model: one call per changed topic, cached, under a daily cap.

The model reads the topic's *study notes* (never the transcripts: short, cheap, already
checked) and writes the parts an extractive pass cannot: an overview, where the videos
agree, differ or contradict each other, and open questions
(:class:`vault_tools.topic_note.Synthesis`). The call goes through the
backend's transport (:mod:`daemon.generate.exchange`: Claude, or an OpenAI-compatible
server; key, shared concurrency slots, retries, error mapping).

* **Cached**: the reply is kept in ``<state>/topic-synthesis/<hash>.json``, keyed by the
  request (model, prompt, the notes' text). An unchanged topic costs nothing at the next
  refresh, a restart included; only a topic whose notes changed is asked again.
* **Budgeted**: before a call, today's synthesis tokens (the registry's count plus this
  refresh's) plus the call's estimate must stay under ``[topics] daily_token_cap``;
  otherwise that topic is written extractively until tomorrow (said once in the log).
* **Never fatal**: any failure (network, malformed reply, no key) leaves that topic
  extractive for this refresh; the next refresh tries again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.errors import JobError, VaultdError
from daemon.generate.tasks import Request, Task
from vault_tools.atomic import write_atomic
from vault_tools.topic_note import StudyNote, Synthesis, parse_synthesis

log = logging.getLogger("vaultd.topics")

NOTE_CHARS = 6000  # each study note's body is cut to this many characters
MAX_TOKENS = 1500
SYSTEM = (
    "You write the synthesis part of a topic note for a student, from the study notes "
    "of several videos on one topic. Use only what the notes say. Reply with one JSON "
    'object and nothing else: {"overview": "3-5 sentences on what the topic is and how '
    'the videos approach it", "agree_differ": ["one line each: where the videos agree, '
    'differ or contradict each other, naming the videos"], "open_questions": ["questions '
    'the videos leave open"]}. Plain sentences; no links, headings or HTML.'
)


def _prompt(name: str, notes: Sequence[StudyNote], texts: Sequence[str]) -> str:
    parts = [f"Topic: {name}", ""]
    for note, text in zip(notes, texts, strict=True):
        body = text[:NOTE_CHARS]
        parts += [f"=== Video: {note.title}" + (f" ({note.channel})" if note.channel else ""),
                  body, ""]
    return "\n".join(parts)


TOPIC_TASK = Task("topic synthesis", None)  # no schema: a plain JSON reply, read here


class TopicSynthesizer:
    """Callable: ``(name, notes, texts) -> (Synthesis or None, tokens, cost_usd)``.

    ``transport`` is a backend's transport (:mod:`daemon.generate.exchange`): Claude's
    or the OpenAI-compatible server's; it retries transient failures itself."""

    def __init__(self, transport: Any, model: str, state: Path, *, cap: int,
                 spent_today: Callable[[], int]) -> None:
        self.transport = transport
        self.model = model
        self.folder = state / "topic-synthesis"
        self.cap = cap
        self.spent_today = spent_today
        self.spent = 0  # tokens paid since the last begin()
        self._capped_logged = False

    def begin(self) -> None:
        """A new refresh: the cap counts what this one spends on top of the registry."""
        self.spent = 0

    def request(self, name: str, notes: Sequence[StudyNote], texts: Sequence[str]
                ) -> Request:
        return Request(TOPIC_TASK, self.model, MAX_TOKENS, (SYSTEM,),
                       _prompt(name, notes, texts), mode="text", cache_prefix=False)

    def __call__(self, name: str, notes: Sequence[StudyNote], texts: Sequence[str]
                 ) -> tuple[Synthesis | None, int, float]:
        request = self.request(name, notes, texts)
        key = hashlib.sha256(json.dumps([self.model, SYSTEM, request.prompt]).encode()
                             ).hexdigest()
        cached = self._cached(key)
        if cached is not None:
            return cached, 0, 0.0
        estimate = (len(SYSTEM) + len(request.prompt)) // 4 + MAX_TOKENS
        if self.spent_today() + self.spent + estimate > self.cap:
            if not self._capped_logged:
                log.warning("topic synthesis: the daily cap of %d tokens is reached; "
                            "topic notes are extractive until tomorrow", self.cap)
                self._capped_logged = True
            return None, 0, 0.0
        try:
            sent = self.transport.send(request)
        except (JobError, VaultdError) as exc:
            log.warning("topic synthesis of %r failed (%s); extractive this time", name,
                        getattr(exc, "reason", exc))
            return None, 0, 0.0
        finally:
            _forget_paid(self.transport)
        usage = sent.usage
        tokens = usage.input_tokens + usage.output_tokens + usage.cache_read_tokens \
            + usage.cache_write_tokens
        self.spent += tokens
        try:
            synthesis = parse_synthesis(sent.text)
        except (ValueError, TypeError) as exc:
            self.transport.rejected(request)
            log.warning("topic synthesis of %r: reply unusable (%s); extractive this time",
                        name, exc)
            return None, tokens, usage.cost_usd
        self._store(key, synthesis)
        return synthesis, tokens, usage.cost_usd

    def _cached(self, key: str) -> Synthesis | None:
        try:
            data = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            return Synthesis(data["overview"], tuple(data["agree_differ"]),
                             tuple(data["questions"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, key: str, synthesis: Synthesis) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.folder / f"{key}.json", json.dumps({
                "overview": synthesis.overview, "agree_differ": list(synthesis.agree_differ),
                "questions": list(synthesis.questions)}, ensure_ascii=False))
        except OSError as exc:
            log.warning("could not cache a topic synthesis: %s", exc)


def _forget_paid(transport: Any) -> None:
    """Claude's client keeps paid replies until a job completes; topics cache their own."""
    client = getattr(transport, "client", None)
    for key in getattr(client, "paid_keys", []):
        client.replies.drop(key)  # type: ignore[union-attr]
    if client is not None and hasattr(client, "paid_keys"):
        client.paid_keys.clear()


def synthesizer_for(config: Config, backend: str, state: Path,
                    spent_today: Callable[[], int]) -> TopicSynthesizer | None:
    """A synthesizer when the vault generates with a model (Claude or an
    OpenAI-compatible server) and the cap allows any synthesis (``[topics]
    daily_token_cap = 0``: extractive only); else None."""
    cap = int(config.get("topics", "daily_token_cap"))
    if cap <= 0 or backend not in ("claude", "openai"):
        return None
    gen = config.section("generate")
    try:
        if backend == "claude":
            from daemon.generate.claude import ClaudeTransport
            from daemon.generate.claude_client import ClaudeClient
            transport: Any = ClaudeTransport(ClaudeClient(gen, str(state)))
            model = str(gen["small_model"])
        else:
            from daemon.generate.openai_backend import OpenAITransport
            section = config.section("openai")
            transport = OpenAITransport(section, gen, str(state))
            model = str(section["model"])
    except VaultdError as exc:
        log.warning("topic synthesis off: %s", exc)
        return None
    return TopicSynthesizer(transport, model, state, cap=cap, spent_today=spent_today)
