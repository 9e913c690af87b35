"""The OpenAI-compatible backend: Ollama, llama.cpp server, LM Studio, vLLM, hosted APIs.

Owns the transport over the official ``openai`` SDK's Chat Completions with a
``base_url`` (config section ``[openai]``), and the backend that puts it under the
shared :class:`~.model_backend.ModelBackend`:

* structured output through ``response_format``: ``json_schema`` (Ollama ≥ 0.5, llama.cpp
  server, LM Studio, vLLM), else ``json_object``, else the tagged text format. A server
  that answers HTTP 400/422 (or 500) about the response format makes this worker step down one
  mode and send again (``openai.structured_output`` pins a mode);
* a reply cut at ``max_tokens`` (``finish_reason == "length"``) is continued by the
  shared ask loop: the partial reply goes back as the assistant's turn;
* streaming (``stream_options.include_usage``) for long outputs, a plain call otherwise;
* our own retries (the SDK's ``max_retries=0``) on 429 (``retry-after`` honoured up to
  ``generate.retry_max_wait_seconds``), 5xx, timeouts; a missing model is a permanent
  failure that names the ``ollama pull`` line;
* concurrency across the vault's workers: ``openai.concurrency`` slots (default 1: a
  local server answers one request at a time anyway);
* usage from the server (estimated from characters when it reports none); cost is 0
  unless ``openai.input_price_per_mtok``/``output_price_per_mtok`` are set;
* the transcript is chunked to ``openai.context_window_tokens`` (minus the output limit
  and the prompts), not to Claude's budget.

The key (``OPENAI_API_KEY`` or ``openai.api_key_file``) is optional, never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daemon.errors import (
    JobError,
    MalformedReplyError,
    NetworkError,
    OfflineError,
    PermanentError,
    RateLimitedError,
    ServiceOverloadedError,
)
from daemon.secrets import load_openai_key
from vault_tools.models import Usage

from .claude_client import ConcurrencySlots
from .exchange import Sent
from .model_backend import ModelBackend
from .retry_policy import RetryPolicy, retry_after_of, wait_or_raise
from .source_text import CHARS_PER_TOKEN
from .tasks import MODES, Request

if TYPE_CHECKING:  # the SDK itself is imported on first use: see _openai()
    import openai

log = logging.getLogger(__name__)

STREAM_ABOVE_TOKENS = 1024
PROMPT_OVERHEAD_TOKENS = 1200  # system prompt + task prompt + JSON example, estimated
_STOPS = {"length": "length", "content_filter": "refusal"}


def pull_hint(model: str) -> str:
    return f"for Ollama run: ollama pull {model}"


def _openai() -> Any:
    """The openai SDK, imported on first use (as the anthropic SDK is, see
    ``claude_client._anthropic``): the daemon builds a transport at start-up for topic
    synthesis and should import the SDK only when it first synthesizes."""
    import openai

    return openai


def classify(exc: Exception, model: str, base_url: str) -> JobError:
    """Map an ``openai`` SDK exception to our error tree."""
    openai = _openai()
    after = retry_after_of(exc)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APITimeoutError):
        return NetworkError(f"the model server at {base_url} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return OfflineError(f"could not reach the model server at {base_url} (is it running?)")
    if isinstance(exc, openai.RateLimitError):
        return RateLimitedError("the model server's rate limit was reached", retry_after=after)
    if isinstance(exc, openai.InternalServerError) or status in (502, 503, 504, 529):
        return ServiceOverloadedError(f"the model server is failing (HTTP {status})",
                                      retry_after=after)
    if isinstance(exc, openai.AuthenticationError):
        return PermanentError("the model server rejected the API key (HTTP 401); check "
                              "OPENAI_API_KEY or openai.api_key_file")
    if isinstance(exc, openai.NotFoundError):
        return PermanentError(f"model {model} not found at {base_url} (HTTP 404); "
                              f"{pull_hint(model)}, or set openai.model")
    if isinstance(exc, openai.APIStatusError):
        return PermanentError(f"the model server refused the request (HTTP {status}) "
                              f"{_message(exc)[:200]}".strip())
    return MalformedReplyError(f"unreadable reply from the model server ({type(exc).__name__})")


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else inner
        return str(msg or "")
    return str(getattr(exc, "message", "") or "")


def _format_refused(exc: Exception) -> bool:
    # 500 too: older llama.cpp-based servers answer an unknown response_format type with
    # HTTP 500 "response_format type must be one of text or json_object".
    if getattr(exc, "status_code", None) not in (400, 422, 500):
        return False
    low = _message(exc).lower()
    return any(w in low for w in ("response_format", "json_schema", "json_object", "schema",
                                  "grammar"))


class OpenAITransport:
    name = "the model server"

    def __init__(self, section: dict[str, Any], gen: dict[str, Any], state_dir: str, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = str(section["base_url"]).rstrip("/")
        self.model = str(section["model"])
        key = load_openai_key(section)
        self._sdk_args: dict[str, Any] = {
            "base_url": self.base_url, "api_key": key or "no-key", "max_retries": 0,
            "timeout": float(section["request_timeout_seconds"])}
        self._sdk: openai.OpenAI | None = None
        self._sdk_lock = threading.Lock()
        self.policy = RetryPolicy.from_config(gen)
        self.slots = ConcurrencySlots(state_dir, int(section["concurrency"]), sleep=sleep,
                                      folder="openai-slots", service="model server")
        self._sleep = sleep
        choice = str(section.get("structured_output") or "auto")
        self.mode = "json_schema" if choice == "auto" else choice
        self.prices = (float(section.get("input_price_per_mtok") or 0.0),
                       float(section.get("output_price_per_mtok") or 0.0))

    @property
    def sdk(self) -> openai.OpenAI:
        """The SDK client, built (and the SDK imported) on first use."""
        with self._sdk_lock:
            if self._sdk is None:
                self._sdk = _openai().OpenAI(**self._sdk_args)
            return self._sdk

    def send(self, request: Request) -> Sent:
        openai = _openai()
        if MODES.index(request.mode) < MODES.index(self.mode):
            request = request.in_mode(self.mode)
        what = request.task.what
        tries = garbled = 0
        while True:
            try:
                with self.slots.hold():
                    return self._send(request)
            except openai.APIStatusError as exc:
                if request.mode != "text" and not request.partial and _format_refused(exc):
                    self.mode = MODES[MODES.index(request.mode) + 1]
                    log.warning("the model server refused response_format %s (%s); using %s",
                                request.mode, _message(exc)[:120], self.mode)
                    request = request.in_mode(self.mode)
                    continue
                err = classify(exc, request.model, self.base_url)
            except openai.OpenAIError as exc:
                err = classify(exc, request.model, self.base_url)
            except ValueError as exc:  # a garbled body or event stream
                err = MalformedReplyError(f"unreadable reply from the model server "
                                          f"({exc!s:.80})")
            if isinstance(err, MalformedReplyError):  # a garbled body: once more, then fail
                garbled += 1
                if garbled > 1:
                    raise err
                log.warning("%s: %s; asking once more", what, err.reason)
                continue
            tries += 1
            wait_or_raise(self.policy, self._sleep, err, tries, what)

    def rejected(self, request: Request) -> None:
        """Nothing is cached between attempts here."""

    def params(self, request: Request) -> dict[str, Any]:
        messages: list[dict[str, str]] = [
            {"role": "system", "content": "\n\n".join(request.system)},
            {"role": "user", "content": request.user_text}]
        params: dict[str, Any] = {"model": request.model, "messages": messages,
                                  "max_tokens": request.max_tokens}
        if request.partial:  # continue the cut reply as plain text
            messages.append({"role": "assistant", "content": request.partial})
        elif request.mode == "json_schema" and request.schema is not None:
            params["response_format"] = {"type": "json_schema", "json_schema": {
                "name": request.task.name, "strict": True, "schema": request.schema}}
        elif request.mode == "json_object" and request.task.schema is not None:
            params["response_format"] = {"type": "json_object"}
        return params

    def _send(self, request: Request) -> Sent:
        params = self.params(request)
        text, finish, usage = "", None, None
        if request.max_tokens > STREAM_ABOVE_TOKENS:
            stream = self.sdk.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True})
            parts: list[str] = []
            for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    if choice.delta is not None and choice.delta.content:
                        parts.append(choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
            text = "".join(parts)
        else:
            reply = self.sdk.chat.completions.create(**params)
            if not reply.choices:
                raise ValueError("reply has no choices")
            text = reply.choices[0].message.content or ""
            finish, usage = reply.choices[0].finish_reason, reply.usage
        return Sent(text, self._usage(params, text, usage), _STOPS.get(finish or "", "end"))

    def _usage(self, params: dict[str, Any], text: str, usage: Any) -> Usage:
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            tokens_in, tokens_out = int(usage.prompt_tokens), int(usage.completion_tokens or 0)
        else:  # the server reported none: estimate, so budgets and the ledger see it
            chars = sum(len(m["content"]) for m in params["messages"])
            tokens_in = int(chars / CHARS_PER_TOKEN)
            tokens_out = int(len(text) / CHARS_PER_TOKEN)
        cost = (tokens_in * self.prices[0] + tokens_out * self.prices[1]) / 1_000_000
        return Usage(input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=round(cost, 6))


class OpenAIBackend(ModelBackend):
    """Backend protocol implementation over an OpenAI-compatible server."""

    name = "openai"

    def __init__(self, config: dict[str, dict[str, Any]], state_dir: str, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        section = config["openai"]
        self.transport = OpenAITransport(section, config["generate"], state_dir, sleep=sleep)
        self.model = self.small_model = str(section["model"])
        self.max_tokens = int(section["max_output_tokens"])
        window = int(section["context_window_tokens"])
        self.budget = max(window - self.max_tokens - PROMPT_OVERHEAD_TOKENS, 500)
        self.mode = self.transport.mode
