"""How often one model request is tried, and how long to wait between tries.

Shared by both model transports (:mod:`.claude_client` for Claude,
:mod:`.openai_backend` for OpenAI-compatible servers); both SDKs run with
``max_retries=0`` so this is the only retry loop of a request. Two counts exist and the
log keeps them apart: the *tries of one request* counted here (``generate.retry_attempts``,
seconds apart), and the *attempts of a job* the dispatcher counts
(``daemon.max_attempts``, minutes to hours apart; the inbox says "gave up after 3
attempts"). When a request's tries are used up its transient error goes back to the job,
which the dispatcher schedules for its next attempt (and logs that count).
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.errors import JobError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries of one request before a transient error is raised
    base_seconds: float = 1.0  # first backoff; doubles per try, jittered
    max_wait_seconds: float = 60.0  # cap on any single wait, retry-after included

    @classmethod
    def from_config(cls, gen: dict[str, Any]) -> RetryPolicy:
        cap = float(gen.get("retry_max_wait_seconds", cls.max_wait_seconds))
        return cls(attempts=int(gen.get("retry_attempts", cls.attempts)),
                   base_seconds=min(cls.base_seconds, cap), max_wait_seconds=cap)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = self.base_seconds * (2 ** attempt) * random.uniform(0.5, 1.0)
        wanted = max(backoff, retry_after or 0.0)
        return min(wanted, self.max_wait_seconds)


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``retry-after`` as
    seconds or an HTTP date) on an SDK error that carries a response, else None."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return float(headers.get("retry-after-ms")) / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else None


def wait_or_raise(policy: RetryPolicy, sleep: Callable[[float], None], err: JobError,
                  tries: int, what: str) -> None:
    """After ``tries`` failed tries of one request: sleep before the next, or raise
    ``err`` when it is permanent or the policy's tries are used up (the job's own
    attempts are the dispatcher's to count and log)."""
    if not err.transient:
        raise err
    if tries >= policy.attempts:
        log.warning("%s: request tried %d time%s (generate.retry_attempts): %s; the job "
                    "gets it back and will be retried if it has attempts left "
                    "(daemon.max_attempts)", what, tries, "" if tries == 1 else "s",
                    err.reason)
        raise err
    wait = policy.delay(tries - 1, err.retry_after)
    log.info("%s: %s; trying the request again in %.2fs (request try %d of %d)", what,
             err.reason, wait, tries + 1, policy.attempts)
    sleep(wait)
