"""The model backend: one video in, a study note and an assessment out, for any model.

Owns the order and shape of the calls for one job — shared by every model backend; what
differs per backend is only its :class:`~.exchange.Transport` and its config section:

* the *source block* (metadata, linkable notes, timestamped transcript) follows the
  system prompt in every call; the notes and the assessment call share it byte for byte
  (Claude caches it as a prefix; local servers reuse their KV cache for it);
* a transcript whose source block exceeds the backend's context budget is cut into parts
  (chapters or time windows); each part is summarised into timestamped notes with the
  small model, and the part notes take the transcript's place. Each part's summary is
  limited so that all of them together fit the budget; nothing is truncated unread;
* every reply goes through :func:`~.exchange.ask` (continue a cut reply, read, salvage,
  ask again only when nothing is usable).

Usage of every billed call is summed into ``VideoContent.usage``; a failure carries it
in ``JobError.usage`` so the ledger accounts for every token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daemon.errors import JobError
from vault_tools.models import SourceMeta, Transcript, Usage, VideoContent, format_timestamp

from .base import GenerationContext, check_enough_words
from .content import Note
from .exchange import Tally, Transport, ask
from .prompts import render_prompt
from .reader import read_assessment, read_chunk, read_note
from .source_text import estimate_tokens, plan_chunks, source_block, transcript_lines
from .tasks import ASSESSMENT, CHUNK, NOTES, Request, Task, build_request

log = logging.getLogger(__name__)

CHUNK_TOKENS = 30_000  # a part small enough to be summarised without losing detail
MIN_PART_TOKENS = 256


@dataclass
class Prepared:
    """The shared prefix of one job and what validation needs to know."""

    meta: SourceMeta
    duration: float
    system: tuple[str, str]  # system prompt, source block
    parts: int = 1  # > 1: the source block holds part summaries (their usage is tallied)


class ModelBackend:
    """Backend protocol implementation over one transport; built in each worker."""

    name = "model"
    transport: Transport
    model: str
    small_model: str
    max_tokens: int
    budget: int  # tokens the source block may take
    mode: str = "json_schema"  # how replies are asked for (tasks.MODES)

    def __init__(self) -> None:
        self.tally = Tally()

    # -- the job -----------------------------------------------------------------------

    def generate(self, transcript: Transcript, meta: SourceMeta,
                 ctx: GenerationContext) -> VideoContent:
        self.tally = Tally()
        try:
            prep = self.prepare(transcript, meta, ctx)
            notes_req, assess_req = self.task_requests(prep, ctx)
            duration, related = prep.duration, ctx.related_notes
            note = ask(self.transport, notes_req,
                       lambda t: read_note(t, meta, duration, related), self.tally,
                       what="study note")
            assessment = ask(self.transport, assess_req,
                             lambda t: read_assessment(t, meta, duration, related),
                             self.tally, what="assessment")
        except JobError as exc:
            exc.usage = self.billed()
            raise
        self.finished()
        usage = self.tally.usage
        log.info("%s: generated with %s in %d part(s); tokens in %d, out %d, cache read %d, "
                 "cache write %d; about $%.4f; %d reply(ies) continued, %d salvaged",
                 meta.key, self.model, prep.parts, usage.input_tokens, usage.output_tokens,
                 usage.cache_read_tokens, usage.cache_write_tokens, usage.cost_usd,
                 self.tally.continued, self.tally.salvaged)
        content = self.content(meta, note, assessment, usage)
        content.salvaged, content.continued = self.tally.salvaged, self.tally.continued
        return content

    def billed(self) -> Usage:
        """Everything billed in this job so far (a transport may know more than the
        replies that came back, e.g. attempts of a call that then failed)."""
        return self.tally.usage

    def finished(self) -> None:
        """Hook: the job's generation completed."""

    def content(self, meta: SourceMeta, note: Note, assessment: str,
                usage: Usage) -> VideoContent:
        return VideoContent(meta=meta, note_markdown=note.markdown,
                            assessment_markdown=assessment, model=self.model,
                            tags=note.tags, aliases=note.aliases, key_terms=note.key_terms,
                            usage=usage)

    def fits_context(self, transcript: Transcript, meta: SourceMeta,
                     ctx: GenerationContext) -> bool:
        """Whether the transcript goes to the model whole (no parts to summarise first)."""
        body = "\n".join(line.render() for line in transcript_lines(transcript))
        duration = float(meta.duration or transcript.end)
        block = source_block(meta, ctx.related_notes, body, duration=duration)
        return estimate_tokens(block) <= self.budget

    def prepare(self, transcript: Transcript, meta: SourceMeta,
                ctx: GenerationContext) -> Prepared:
        """Build the shared prefix; for long videos, summarise the parts first."""
        lines = transcript_lines(transcript)
        check_enough_words(transcript, ctx.config)
        duration = float(meta.duration or transcript.end)
        body = "\n".join(line.render() for line in lines)
        system_prompt = render_prompt("system", ctx.prompts_dir, language=ctx.language)
        block = source_block(meta, ctx.related_notes, body, duration=duration)
        parts = 1
        if estimate_tokens(block) > self.budget:
            chunks = plan_chunks(lines, meta.chapters, min(self.budget, CHUNK_TOKENS),
                                 duration)
            parts = len(chunks)
            log.info("%s: transcript over the context budget (%d tokens); summarising %d "
                     "parts first", meta.key, self.budget, parts)
            share = max(MIN_PART_TOKENS, min(self.max_tokens, self.budget // parts))
            digests: list[str] = []
            for i, chunk in enumerate(chunks, 1):
                part_block = source_block(meta, ctx.related_notes, chunk.text)
                request = build_request(
                    CHUNK, model=self.small_model, max_tokens=share,
                    system=(system_prompt, part_block), mode="text",
                    prompts_dir=ctx.prompts_dir, cache_prefix=False, part=i, parts=parts,
                    start=format_timestamp(chunk.start), end=format_timestamp(chunk.end),
                    language=ctx.language)
                text = ask(self.transport, request, lambda t, i=i: read_chunk(t, i),
                           self.tally, what=f"notes of part {i} of {parts}",
                           continue_cut=False)
                label = f" {chunk.title}" if chunk.title else ""
                digests.append(f"### Part {i} of {parts}{label} "
                               f"({format_timestamp(chunk.start)}–"
                               f"{format_timestamp(chunk.end)})\n\n{text.strip()}")
            block = source_block(meta, ctx.related_notes, "\n\n".join(digests), digest=True,
                                 duration=duration)
        return Prepared(meta, duration, (system_prompt, block), parts)

    def task_requests(self, prep: Prepared, ctx: GenerationContext) -> tuple[Request,
                                                                              Request]:
        """The notes and assessment requests; identical up to the user turn."""

        def task(t: Task) -> Request:
            return build_request(t, model=self.model, max_tokens=self.max_tokens,
                                 system=prep.system, mode=self.mode,
                                 prompts_dir=ctx.prompts_dir, language=ctx.language,
                                 title=prep.meta.title)

        return task(NOTES), task(ASSESSMENT)
