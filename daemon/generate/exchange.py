"""One task asked of a model, paid for once: send, continue a cut reply, read, salvage.

The transport seam lives here. A :class:`Transport` (Claude, OpenAI-compatible, …)
sends one :class:`~.tasks.Request` and returns a :class:`Sent`: the reply text, the
usage billed (every attempt it made, retries of transient errors included) and why the
model stopped, normalised to ``"end"``, ``"length"`` or ``"refusal"``. Transports retry
transient failures themselves and raise :mod:`daemon.errors` types.

:func:`ask` owns what happens to a reply, the same for every backend:

* cut at the output limit (``"length"``): the partial reply is sent back as the
  assistant's turn and the model continues it — up to :data:`MAX_CONTINUATIONS` times —
  instead of being asked again from scratch;
* read by the task's reader (:mod:`.reader`), which salvages what is usable;
* only a reply with nothing usable is asked for again, once.

A :class:`Tally` counts continued and salvaged replies and sums usage for the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from daemon.errors import MalformedReplyError, PermanentError
from vault_tools.models import Usage

from .reader import Read
from .tasks import Request

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_CONTINUATIONS = 2


@dataclass
class Sent:
    text: str
    usage: Usage
    stop: str  # "end" | "length" | "refusal"


class Transport(Protocol):
    name: str  # shown in messages: "Claude", "the OpenAI-compatible server"

    def send(self, request: Request) -> Sent: ...

    def rejected(self, request: Request) -> None:
        """The reply to ``request`` was unusable: never reuse it (reply caches)."""


@dataclass
class Tally:
    usage: Usage = field(default_factory=Usage)
    salvaged: int = 0
    continued: int = 0


def ask(transport: Transport, request: Request, read: Callable[[str], Read[T]],
        tally: Tally, *, what: str, continue_cut: bool = True) -> T:
    """The task's result, read from the model's reply (see the module docstring)."""
    for attempt in (1, 2):
        sent = transport.send(request)
        tally.usage = tally.usage.add(sent.usage)
        text = sent.text
        rounds = 0
        while sent.stop == "length" and continue_cut and rounds < MAX_CONTINUATIONS:
            rounds += 1
            tally.continued += 1
            log.info("%s: reply cut at the output limit (%d tokens); asking the model to "
                     "continue it", what, request.max_tokens)
            sent = transport.send(request.continued(text.rstrip()))
            tally.usage = tally.usage.add(sent.usage)
            text = text.rstrip() + sent.text
        if sent.stop == "refusal":
            raise PermanentError(f"{transport.name} declined to write the {what} for this "
                                 "video")
        try:
            result = _read_joined(read, text, sent.text if rounds else None)
        except MalformedReplyError as exc:
            transport.rejected(request)
            if attempt == 2:
                raise
            log.warning("%s: %s; asking once more", what, exc.reason)
            continue
        if result.salvaged:
            tally.salvaged += 1
            log.warning("%s: the reply did not follow the requested format; salvaged its "
                        "usable content instead of paying for it again", what)
        elif sent.stop == "length":
            log.warning("%s: still cut after %d continuations; used what was written",
                        what, rounds)
        return result.value
    raise AssertionError("unreachable")


def _read_joined(read: Callable[[str], Read[T]], joined: str, last: str | None) -> Read[T]:
    """Read a continued reply; a server that does not continue a final assistant turn
    (it answers anew instead) leaves a whole answer in the last piece: read that."""
    try:
        return read(joined)
    except MalformedReplyError:
        if last is None:
            raise
        try:
            return read(last)
        except MalformedReplyError:
            pass
        raise
