"""One reliable model call: key, shared concurrency limit, retries, error mapping.

Owns everything between "here are the request parameters" and "here is the reply text
and usage", so the backend above it only deals with content:

* the API key, from ``ANTHROPIC_API_KEY`` or ``generate.api_key_file`` (refused when the
  file is readable by group or others); the key is never logged or put in a message;
* a concurrency limit shared by every worker process of a vault
  (``generate.max_concurrent_requests``): slot files in ``<state_dir>/claude-slots``
  locked with ``fcntl.flock`` (released by the kernel if a worker dies);
* our own retry loop (the SDK's is set to ``max_retries=0``) on 429, 529, 5xx, timeouts
  and connection errors, with the policy shared by every transport
  (:mod:`.retry_policy`: ``retry-after`` honoured up to a cap, else exponential backoff
  with jitter); when the request's tries run out it raises the transient
  :mod:`daemon.errors` type so the daemon reschedules the job (a new job attempt);
* malformed or empty replies: retried once, then :class:`MalformedReplyError`;
* streaming (``messages.stream``) for calls whose output may be long.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from daemon.errors import (
    ConfigError,
    JobError,
    MalformedReplyError,
    NetworkError,
    OfflineError,
    PermanentError,
    RateLimitedError,
    ServiceOverloadedError,
)
from daemon.secrets import load_api_key, scrub
from vault_tools.models import Usage

if TYPE_CHECKING:  # the SDK itself is imported on first use: see _anthropic()
    import anthropic

from .pricing import usage_from_api
from .retry_policy import RetryPolicy, retry_after_of, wait_or_raise

log = logging.getLogger(__name__)

T = TypeVar("T")

# Calls allowed more output tokens than this are streamed (long generations would hit
# HTTP timeouts otherwise). Below it a plain call is cheaper: the SDK builds a model
# object per streamed event, ~0.2 s of worker CPU per video (benchmarks/README.md).
STREAM_ABOVE_TOKENS = 12_000


class ConcurrencySlots:
    """At most ``limit`` holders across processes, via flock'd slot files."""

    def __init__(self, state_dir: str | os.PathLike[str], limit: int,
                 sleep: Callable[[float], None] = time.sleep, *,
                 folder: str = "claude-slots", service: str = "Claude") -> None:
        self.dir = Path(state_dir) / folder
        self.service = service
        self.limit = max(int(limit), 1)
        self._sleep = sleep

    @contextlib.contextmanager
    def hold(self, timeout: float = 900.0) -> Iterator[int]:
        self.dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            for slot in range(self.limit):
                fd = os.open(self.dir / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                try:
                    yield slot
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                return
            if time.monotonic() >= deadline:
                raise ServiceOverloadedError(
                    f"all {self.service} request slots stayed busy; will try again later")
            self._sleep(random.uniform(0.05, 0.25))


@dataclass
class Reply:
    text: str
    usage: Usage
    stop_reason: str | None


def _anthropic() -> Any:
    """The anthropic SDK, imported on first use rather than with this module.

    ``import anthropic`` is 1.2-1.5 s of CPU (pydantic models built at import). A worker
    gets it preloaded by the fork server (daemon.jobs.warm_start); the daemon itself
    builds a client at start-up for topic synthesis and should not pay for the SDK there,
    on the first model call's path, but only when it first synthesizes a topic.
    """
    import anthropic

    return anthropic


def classify(exc: Exception) -> JobError:
    """Map an SDK exception to our error tree (transient ones get ``retry_after``)."""
    anthropic = _anthropic()
    after = retry_after_of(exc)
    kind = getattr(exc, "type", None)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, anthropic.APITimeoutError):
        return NetworkError("the Claude API did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError):
        return OfflineError("could not reach the Claude API (no network?)")
    if isinstance(exc, anthropic.RateLimitError) or kind == "rate_limit_error":
        return RateLimitedError("Claude API rate limit reached", retry_after=after)
    if (isinstance(exc, anthropic.InternalServerError)
            or kind in ("overloaded_error", "api_error", "timeout_error")):
        return ServiceOverloadedError(
            f"Claude API overloaded or failing (HTTP {status})", retry_after=after)
    if isinstance(exc, anthropic.RequestTimeoutError):
        return NetworkError("the Claude API timed out the request")
    if isinstance(exc, anthropic.AuthenticationError):
        return PermanentError("Claude rejected the API key (HTTP 401); check the key")
    if isinstance(exc, anthropic.PermissionDeniedError):
        return PermanentError("this API key may not use that model (HTTP 403)")
    if isinstance(exc, anthropic.NotFoundError):
        return PermanentError("Claude API: model or endpoint not found (HTTP 404); "
                              "check generate.model")
    if isinstance(exc, anthropic.APIStatusError):
        msg = (getattr(exc, "api_message", None) or "")[:200]
        return PermanentError(f"Claude API refused the request (HTTP {status}) {msg}".strip())
    return MalformedReplyError(f"unreadable reply from the Claude API ({type(exc).__name__})")


class ReplyCache:
    """Replies already paid for, by request: when a later call of the same job fails
    and the job is retried, the calls that succeeded are not sent (or billed) again.
    Entries live only until their job's generation completes (a regeneration must ask
    the model anew), as small text files in the state dir; leftovers expire in a week."""

    MAX_AGE = 7 * 24 * 3600

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with contextlib.suppress(OSError):
            now = time.time()
            for old in [*folder.glob("*.txt"), *folder.glob("*.cut")]:
                if now - old.stat().st_mtime > self.MAX_AGE:
                    old.unlink(missing_ok=True)

    @staticmethod
    def key(params: dict[str, Any]) -> str:
        blob = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> str | None:
        try:
            return (self.folder / f"{key}.txt").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def stop_of(self, key: str) -> str:
        """Why the cached reply ended: a reply cut at max_tokens must be continued when
        it is reused, exactly as when it first came back."""
        return "max_tokens" if (self.folder / f"{key}.cut").exists() else "end_turn"

    def put(self, key: str, text: str, stop_reason: str | None = None) -> None:
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(scrub(text), encoding="utf-8")  # a reply may echo a secret
            if stop_reason == "max_tokens":
                (self.folder / f"{key}.cut").touch()
            os.replace(tmp, self.folder / f"{key}.txt")

    def drop(self, key: str) -> None:
        (self.folder / f"{key}.txt").unlink(missing_ok=True)
        (self.folder / f"{key}.cut").unlink(missing_ok=True)


class ClaudeClient:
    """Thin, reliable wrapper over ``anthropic.Anthropic`` for one worker process."""

    def __init__(self, gen: dict[str, Any], state_dir: str, *, api_key: str | None = None,
                 base_url: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        key = api_key or load_api_key(gen)
        if not key:
            raise ConfigError("generate.backend", "claude needs ANTHROPIC_API_KEY or "
                              "generate.api_key_file")
        self.policy = RetryPolicy.from_config(gen)
        # 0 means "one per worker": the dispatcher fills in its worker count; a backend
        # built elsewhere (batch, tests) gets a small fixed limit.
        limit = int(gen.get("max_concurrent_requests") or 0) or 4
        self.slots = ConcurrencySlots(state_dir, limit,
                                      sleep=sleep)
        self._sleep = sleep
        self._sdk_args: dict[str, Any] = {
            "api_key": key, "base_url": base_url, "max_retries": 0,
            "timeout": float(gen.get("request_timeout_seconds", 600.0))}
        self._sdk: anthropic.Anthropic | None = None
        self._sdk_lock = threading.Lock()
        self.replies = ReplyCache(Path(state_dir) / "replies")
        self.billed = Usage()  # every billed attempt since the caller last reset it
        self.paid_keys: list[str] = []  # reply-cache entries made since that reset

    @property
    def sdk(self) -> anthropic.Anthropic:
        """The SDK client, built (and the SDK imported) on first use."""
        with self._sdk_lock:
            if self._sdk is None:
                self._sdk = _anthropic().Anthropic(**self._sdk_args)
            return self._sdk

    def call(self, params: dict[str, Any], *, what: str,
             parse: Callable[[Reply], T]) -> tuple[T, Usage]:
        """Send one Messages request (streamed when its output may be long) and parse it.

        ``parse`` raises MalformedReplyError for a reply it cannot use. Transient API
        failures are retried per policy, then raised as transient JobErrors; an empty,
        unreadable or unparsable reply is asked for once more, then MalformedReplyError.
        Returns the parsed value and the usage of every attempt that was billed.
        """
        usage = Usage()
        malformed = 0
        tries = 0
        cache_key = self.replies.key(params)
        cached = self.replies.get(cache_key)
        if cached is not None:  # paid for by an earlier attempt of this job: reuse it
            try:
                parsed = parse(Reply(cached, Usage(), self.replies.stop_of(cache_key)))
                self.paid_keys.append(cache_key)
                return parsed, Usage()
            except MalformedReplyError:
                self.replies.drop(cache_key)
        sdk_error = _anthropic().AnthropicError
        while True:
            err: JobError
            try:
                with self.slots.hold():
                    reply = self._send(params)
            except sdk_error as exc:
                err = classify(exc)
            except ValueError as exc:  # JSON decoding of a garbled body
                err = MalformedReplyError(f"unreadable reply from the Claude API ({exc!s:.80})")
            else:
                usage = usage.add(reply.usage)
                self.billed = self.billed.add(reply.usage)
                try:
                    if not reply.text.strip():
                        raise MalformedReplyError(f"Claude returned an empty {what}")
                    parsed = parse(reply)
                    self.replies.put(cache_key, reply.text, reply.stop_reason)
                    self.paid_keys.append(cache_key)
                    return parsed, usage
                except MalformedReplyError as exc:
                    err = exc
            if isinstance(err, MalformedReplyError):
                malformed += 1
                if malformed > 1:
                    raise err
                log.warning("%s: %s; asking once more", what, err.reason)
                continue
            tries += 1
            self._wait_or_raise(err, tries, what)

    def api(self, fn: Callable[[], T], *, what: str) -> T:
        """Run one non-message API call (batches) with the same transient retry policy."""
        tries = 0
        sdk_error = _anthropic().AnthropicError
        while True:
            try:
                return fn()
            except sdk_error as exc:
                err = classify(exc)
            tries += 1
            self._wait_or_raise(err, tries, what)

    def _wait_or_raise(self, err: JobError, tries: int, what: str) -> None:
        wait_or_raise(self.policy, self._sleep, err, tries, what)

    def _send(self, params: dict[str, Any]) -> Reply:
        model = str(params["model"])
        if int(params["max_tokens"]) > STREAM_ABOVE_TOKENS:
            try:
                with self.sdk.messages.stream(**params) as stream:
                    message = stream.get_final_message()
            except (AssertionError, RuntimeError) as exc:  # the SDK's "no message_start"
                raise ValueError(f"garbled event stream ({type(exc).__name__})") from None
            return reply_from_message(model, message)
        # The raw body, read as JSON: building the SDK's pydantic models for every reply
        # was a sixth of a worker's CPU per video (py-spy, benchmarks/README.md). Errors
        # (4xx/5xx, connection) are still raised by the SDK as before.
        raw = self.sdk.messages.with_raw_response.create(**params)
        return reply_from_json(model, raw.json())


def reply_from_json(model: str, data: Any) -> Reply:
    """Text and usage of a Messages API reply body; raises ValueError if it is not one."""
    if not isinstance(data, dict):
        raise ValueError("reply is not a JSON object")
    content, usage = data.get("content"), data.get("usage")
    if not isinstance(content, list) or not isinstance(usage, dict):
        raise ValueError("reply lacks content or usage")
    text = "".join(b["text"] for b in content if isinstance(b, dict)
                   and b.get("type") == "text" and isinstance(b.get("text"), str))
    stop = data.get("stop_reason")
    return Reply(text, usage_from_api(model, usage), stop if isinstance(stop, str) else None)


def reply_from_message(model: str, message: Any, *, batch: bool = False) -> Reply:
    """Text and usage of an SDK ``Message``; raises ValueError if it is not one."""
    content = getattr(message, "content", None)
    usage = getattr(message, "usage", None)
    if content is None or usage is None:
        raise ValueError("reply lacks content or usage")
    text = "".join(getattr(b, "text", "") for b in content if getattr(b, "type", "") == "text")
    return Reply(text, usage_from_api(model, usage, batch=batch),
                 getattr(message, "stop_reason", None))
