"""Backfills through the Message Batches API (half price, results within 24 hours).

Owns the client side of ``vaultd run --batch``; the CLI and the daemon decide which jobs
go in and when to poll. Usage::

    backend = ClaudeBackend(config, state_dir)
    ticket = submit_batch(backend, jobs)          # jobs: list[BatchJob]
    store(ticket.to_json())                       # survives a daemon restart
    ...
    results = collect_batch(backend, ticket, jobs)  # None while still processing
    for key, outcome in results.items():          # VideoContent or a JobError
        ...
    for key in ticket.direct:                     # too long for one request:
        backend.generate(...)                     # run these the normal way

Each video becomes two requests (notes, assessment) with the same cached prefix as the
direct path, so the second can read the transcript from the prompt cache (best effort in
batches). Videos whose transcript needs summarising in parts are not batched: they are
listed in ``ticket.direct``. Replies are validated exactly like direct ones; a reply that
fails validation yields a MalformedReplyError for that job (no second ask inside a batch),
and a request the API errored, cancelled or let expire yields a transient error so the
job can be sent again. Costs are estimated at the batch discount.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from daemon.errors import (
    JobError,
    MalformedReplyError,
    PermanentError,
    RateLimitedError,
    ServiceOverloadedError,
    TransientError,
)
from vault_tools.models import SourceMeta, Transcript, Usage, VideoContent

from .base import GenerationContext
from .claude import ClaudeBackend
from .claude_client import reply_from_message
from .reader import read_assessment, read_note

log = logging.getLogger(__name__)


@dataclass
class BatchJob:
    key: str  # ledger key
    transcript: Transcript
    meta: SourceMeta
    ctx: GenerationContext


@dataclass
class BatchTicket:
    """What to remember about a submitted batch (JSON-serialisable)."""

    batch_id: str | None
    custom_ids: dict[str, str] = field(default_factory=dict)  # "j3" -> ledger key
    direct: list[str] = field(default_factory=list)  # keys to generate directly

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> BatchTicket:
        return cls(**json.loads(raw))


def submit_batch(backend: ClaudeBackend, jobs: list[BatchJob]) -> BatchTicket:
    """Send the notes and assessment requests of ``jobs`` as one Message Batch."""
    ticket = BatchTicket(batch_id=None)
    requests: list[dict[str, Any]] = []
    for i, job in enumerate(jobs):
        if not backend.fits_context(job.transcript, job.meta, job.ctx):
            ticket.direct.append(job.key)
            continue
        prep = backend.prepare(job.transcript, job.meta, job.ctx)  # no API call: it fits
        notes, assessment = backend.requests(prep, job.ctx)
        cid = f"j{i}"
        ticket.custom_ids[cid] = job.key
        requests.append({"custom_id": f"{cid}-notes", "params": notes})
        requests.append({"custom_id": f"{cid}-assessment", "params": assessment})
    if requests:
        batch = backend.client.api(
            lambda: backend.client.sdk.messages.batches.create(requests=requests),
            what="batch submit")
        ticket.batch_id = batch.id
        log.info("submitted batch %s with %d videos (%d to run directly)", batch.id,
                 len(ticket.custom_ids), len(ticket.direct))
    return ticket


def _error_of(result: Any) -> JobError:
    kind = result.type
    if kind in ("canceled", "expired"):
        return TransientError(f"the batch request was {kind}; it will be sent again")
    err_type = getattr(getattr(getattr(result, "error", None), "error", None), "type", "")
    if err_type == "rate_limit_error":
        return RateLimitedError("Claude API rate limit reached (batch)")
    if err_type in ("overloaded_error", "api_error", "timeout_error"):
        return ServiceOverloadedError(f"Claude API failed the batch request ({err_type})")
    return PermanentError(f"Claude API refused the batch request ({err_type or kind})")


def collect_batch(backend: ClaudeBackend, ticket: BatchTicket,
                  jobs: list[BatchJob]) -> dict[str, VideoContent | JobError] | None:
    """Results by ledger key once the batch has ended; None while it is processing."""
    if ticket.batch_id is None:
        return {}
    batch_id = ticket.batch_id
    client = backend.client
    status = client.api(lambda: client.sdk.messages.batches.retrieve(batch_id),
                        what="batch poll")
    if status.processing_status != "ended":
        return None
    by_key = {job.key: job for job in jobs}
    raw: dict[str, dict[str, Any]] = {}
    for item in client.api(lambda: list(client.sdk.messages.batches.results(batch_id)),
                           what="batch results"):
        cid, _, part = item.custom_id.partition("-")
        raw.setdefault(cid, {})[part] = item.result
    out: dict[str, VideoContent | JobError] = {}
    for cid, key in ticket.custom_ids.items():
        job = by_key.get(key)
        if job is None:
            continue
        parts = raw.get(cid, {})
        try:
            out[key] = _finish(backend, job, parts.get("notes"), parts.get("assessment"))
        except JobError as exc:
            out[key] = exc
    return out


def _finish(backend: ClaudeBackend, job: BatchJob, notes_result: Any,
            assessment_result: Any) -> VideoContent:
    usage = Usage()
    texts: list[str] = []
    for result in (notes_result, assessment_result):
        if result is None:
            raise TransientError("the batch returned no result for this video")
        if result.type != "succeeded":
            raise _error_of(result)
        try:
            reply = reply_from_message(backend.model, result.message, batch=True)
        except ValueError as exc:
            raise MalformedReplyError("unreadable reply in the batch results") from exc
        usage = usage.add(reply.usage)
        texts.append(reply.text)  # a reply cut at max_tokens is salvaged below if it can be
    duration = float(job.meta.duration or job.transcript.end)
    related = job.ctx.related_notes
    note = read_note(texts[0], job.meta, duration, related)
    assessment = read_assessment(texts[1], job.meta, duration, related)
    content = backend.content(job.meta, note.value, assessment.value, usage)
    content.salvaged = int(note.salvaged) + int(assessment.salvaged)
    return content
