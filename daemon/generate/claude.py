"""The Claude backend: the model backend (:mod:`.model_backend`) over the Messages API.

Owns the Claude transport: how a transport-neutral :class:`~.tasks.Request` becomes
Messages parameters, and what comes back. The reliability of each call (key, retries,
concurrency slots, reply cache) is :mod:`.claude_client`'s.

Cost is the design driver. The system prompt plus the *source block* form a prefix
marked ``cache_control: ephemeral`` that is byte-identical in the notes call and the
assessment call, so the second call reads the transcript from the prompt cache at a
tenth of the input price. Replies are asked for as JSON with structured outputs
(``output_config.format``, GA in the Messages API; anthropic SDK ≥ 2.x); since the
output format is part of the cache key, both calls carry the same schema
(:data:`~.tasks.SHARED_SCHEMA`). A model that refuses structured outputs (HTTP 400
naming the output format) makes this worker fall back to the tagged text format.

A reply cut at ``max_tokens`` is continued: the partial reply goes back as the
assistant's turn (without the output format, which Claude does not combine with a
prefilled reply).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from daemon.errors import PermanentError
from vault_tools.models import SourceMeta, Transcript, Usage, VideoContent

from .base import GenerationContext
from .claude_client import ClaudeClient, Reply
from .exchange import Sent
from .model_backend import ModelBackend, Prepared
from .pricing import deprecation_of, price_for
from .tasks import SHARED_SCHEMA, Request

log = logging.getLogger(__name__)

CACHE = {"type": "ephemeral"}
DEFAULT_CONTEXT_BUDGET = 100_000
_STOPS = {"max_tokens": "length", "refusal": "refusal"}


class ClaudeTransport:
    name = "Claude"

    def __init__(self, client: ClaudeClient) -> None:
        self.client = client
        self.structured = True

    def params(self, request: Request) -> dict[str, Any]:
        """The Messages API parameters of ``request``."""
        system: list[dict[str, Any]] = [{"type": "text", "text": t} for t in request.system]
        if request.cache_prefix and system:
            system[-1]["cache_control"] = CACHE
        messages: list[dict[str, Any]] = [{"role": "user", "content": request.user_text}]
        params: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens,
                                  "system": system, "messages": messages}
        if request.partial:
            messages.append({"role": "assistant", "content": request.partial})
        elif request.schema is not None:
            params["output_config"] = {"format": {"type": "json_schema",
                                                  "schema": SHARED_SCHEMA}}
        return params

    def send(self, request: Request) -> Sent:
        if not self.structured and request.mode != "text":
            request = request.in_mode("text")
        what = request.task.what
        try:
            reply, usage = self.client.call(self.params(request), what=what,
                                            parse=_reply)
        except PermanentError as exc:
            if request.schema is None or not _format_refused(exc.reason):
                raise
            log.warning("%s does not accept structured outputs (%s); using the text format",
                        request.model, exc.reason)
            self.structured = False
            return self.send(request.in_mode("text"))
        return Sent(reply.text, usage, _STOPS.get(reply.stop_reason or "", "end"))

    def rejected(self, request: Request) -> None:
        if not self.structured and request.mode != "text":
            request = request.in_mode("text")
        self.client.replies.drop(self.client.replies.key(self.params(request)))


def _reply(reply: Reply) -> Reply:
    return reply


def _format_refused(reason: str) -> bool:
    low = reason.lower()
    return "http 400" in low and any(w in low for w in ("output_config", "output format",
                                                        "json_schema", "structured"))


class ClaudeBackend(ModelBackend):
    """Backend protocol implementation; built in each worker process."""

    name = "claude"

    def __init__(self, config: dict[str, dict[str, Any]], state_dir: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 base_url: str | None = None) -> None:
        super().__init__()
        gen = config["generate"]
        self.model = str(gen["model"])
        self.small_model = str(gen.get("small_model") or self.model)
        self.max_tokens = int(gen["max_tokens"])
        self.budget = int(gen.get("context_budget_tokens", DEFAULT_CONTEXT_BUDGET))
        self.client = ClaudeClient(gen, state_dir, sleep=sleep, base_url=base_url)
        self.transport = ClaudeTransport(self.client)
        for model in {self.model, self.small_model}:
            if eol := deprecation_of(model):
                log.warning("model %s is deprecated (end of life %s); set generate.model "
                            "to a current one", model, eol)
            if not price_for(model)[1]:
                log.warning("no price known for %s; cost estimates use Sonnet prices", model)

    def generate(self, transcript: Transcript, meta: SourceMeta,
                 ctx: GenerationContext) -> VideoContent:
        """As the model backend's; replies paid for are kept in the reply cache until the
        job's generation completes, so a retried job does not buy them again."""
        self.client.billed = Usage()
        self.client.paid_keys = []
        return super().generate(transcript, meta, ctx)

    def billed(self) -> Usage:
        return self.client.billed

    def finished(self) -> None:
        for key in self.client.paid_keys:  # done: the bridge to a retry is not needed
            self.client.replies.drop(key)

    def requests(self, prep: Prepared, ctx: GenerationContext) -> tuple[dict[str, Any],
                                                                          dict[str, Any]]:
        """The notes and assessment Messages parameters (the batch sends these)."""
        notes, assessment = self.task_requests(prep, ctx)
        return self.transport.params(notes), self.transport.params(assessment)
