"""The Claude backend: one video in, a study note and an assessment out.

Owns the order and shape of the model calls for one job; the reliability of each call is
:mod:`.claude_client`'s, the exact prompt text :mod:`.prompts`', the source block
:mod:`.source_text`'s and the validation of replies :mod:`.content`'s.

Cost is the design driver. The system prompt plus the *source block* (metadata, linkable
notes, timestamped transcript) form a prefix marked ``cache_control: ephemeral`` that is
byte-identical in the notes call and the assessment call, so the second call reads the
transcript from the prompt cache at a tenth of the input price. The two calls differ only
in the user turn that follows the prefix.

A transcript over ``generate.context_budget_tokens`` is cut into parts (chapters or time
windows); each part is summarised with ``generate.small_model`` into timestamped notes,
and the concatenated part notes take the transcript's place in the shared prefix. Every
part is sent; nothing is truncated.

Usage of every billed call is summed into ``VideoContent.usage`` with an estimated cost.
The daily token budget is enforced by the daemon from that usage, not here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.errors import EmptyTranscriptError, JobError, MalformedReplyError, PermanentError
from vault_tools.models import SourceMeta, Transcript, Usage, VideoContent, format_timestamp

from .base import GenerationContext
from .claude_client import ClaudeClient, Reply
from .content import Note, has_timestamp, parse_assessment, parse_note
from .pricing import deprecation_of, price_for
from .prompts import render_prompt
from .source_text import estimate_tokens, plan_chunks, source_block, transcript_lines

log = logging.getLogger(__name__)

CACHE = {"type": "ephemeral"}
DEFAULT_CONTEXT_BUDGET = 100_000
CHUNK_TOKENS = 30_000  # a part small enough to be summarised without losing detail
MIN_WORDS = 20  # below this there is nothing to study from


@dataclass
class Prepared:
    """The shared prefix of one job and what validation needs to know."""

    meta: SourceMeta
    duration: float
    system: list[dict[str, Any]]
    usage: Usage
    parts: int = 1


def _checked(what: str, parse: Callable[[str], Any]) -> Callable[[Reply], Any]:
    def run(reply: Reply) -> Any:
        if reply.stop_reason == "max_tokens":
            raise PermanentError(f"Claude's {what} was cut off at generate.max_tokens; "
                                 "raise it in the config")
        if reply.stop_reason == "refusal":
            raise PermanentError(f"Claude declined to write the {what} for this video")
        return parse(reply.text)

    return run


class ClaudeBackend:
    """Backend protocol implementation; built in each worker process."""

    name = "claude"

    def __init__(self, config: dict[str, dict[str, Any]], state_dir: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 base_url: str | None = None) -> None:
        gen = config["generate"]
        self.model = str(gen["model"])
        self.small_model = str(gen.get("small_model") or self.model)
        self.max_tokens = int(gen["max_tokens"])
        self.budget = int(gen.get("context_budget_tokens", DEFAULT_CONTEXT_BUDGET))
        self.client = ClaudeClient(gen, state_dir, sleep=sleep, base_url=base_url)
        for model in {self.model, self.small_model}:
            if eol := deprecation_of(model):
                log.warning("model %s is deprecated (end of life %s); set generate.model "
                            "to a current one", model, eol)
            if not price_for(model)[1]:
                log.warning("no price known for %s; cost estimates use Sonnet prices", model)

    # -- the job -----------------------------------------------------------------------

    def generate(self, transcript: Transcript, meta: SourceMeta,
                 ctx: GenerationContext) -> VideoContent:
        """Notes and assessment for one video. A failure carries the usage billed so far
        (``JobError.usage``) so the ledger accounts for every token; calls that succeeded
        are reused from the reply cache when the job is retried."""
        self.client.billed = Usage()
        self.client.paid_keys = []
        try:
            content = self._generate(transcript, meta, ctx)
        except JobError as exc:
            exc.usage = self.client.billed
            raise
        for key in self.client.paid_keys:  # done: the bridge to a retry is not needed
            self.client.replies.drop(key)
        return content

    def _generate(self, transcript: Transcript, meta: SourceMeta,
                  ctx: GenerationContext) -> VideoContent:
        prep = self.prepare(transcript, meta, ctx)
        notes_req, assess_req = self.requests(prep, ctx)
        note, u1 = self.client.call(notes_req, what="study note", parse=_checked(
            "study note", lambda t: parse_note(t, meta, prep.duration, ctx.related_notes)))
        assessment, u2 = self.client.call(assess_req, what="assessment", parse=_checked(
            "assessment", lambda t: parse_assessment(t, meta, prep.duration,
                                                     ctx.related_notes)))
        usage = prep.usage.add(u1).add(u2)
        log.info("%s: generated with %s in %d part(s); tokens in %d, out %d, cache read %d, "
                 "cache write %d; about $%.4f", meta.key, self.model, prep.parts,
                 usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
                 usage.cache_write_tokens, usage.cost_usd)
        return self.content(meta, note, assessment, usage)

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
        """Build the shared cached prefix; for long videos, summarise the parts first."""
        lines = transcript_lines(transcript)
        if sum(len(line.text.split()) for line in lines) < MIN_WORDS:
            raise EmptyTranscriptError("the transcript is empty or too short to study from")
        duration = float(meta.duration or transcript.end)
        body = "\n".join(line.render() for line in lines)
        system_prompt = render_prompt("system", ctx.prompts_dir, language=ctx.language)
        usage = Usage()
        parts = 1
        block = source_block(meta, ctx.related_notes, body, duration=duration)
        if estimate_tokens(block) > self.budget:
            chunks = plan_chunks(lines, meta.chapters, min(self.budget, CHUNK_TOKENS),
                                 duration)
            parts = len(chunks)
            log.info("%s: transcript over the context budget (%d tokens); summarising %d "
                     "parts first", meta.key, self.budget, parts)
            digests: list[str] = []
            for i, chunk in enumerate(chunks, 1):
                text, u = self._summarise(system_prompt, meta, ctx, chunk.text, i, parts,
                                          chunk.start, chunk.end)
                usage = usage.add(u)
                label = f" {chunk.title}" if chunk.title else ""
                digests.append(f"### Part {i} of {parts}{label} "
                               f"({format_timestamp(chunk.start)}–"
                               f"{format_timestamp(chunk.end)})\n\n{text.strip()}")
            block = source_block(meta, ctx.related_notes, "\n\n".join(digests), digest=True,
                                 duration=duration)
        system = [{"type": "text", "text": system_prompt},
                  {"type": "text", "text": block, "cache_control": CACHE}]
        return Prepared(meta, duration, system, usage, parts)

    def requests(self, prep: Prepared, ctx: GenerationContext) -> tuple[dict[str, Any],
                                                                          dict[str, Any]]:
        """The notes and assessment requests; identical up to the user turn."""

        def task(name: str) -> dict[str, Any]:
            prompt = render_prompt(name, ctx.prompts_dir, language=ctx.language,
                                   title=prep.meta.title)
            return {"model": self.model, "max_tokens": self.max_tokens,
                    "system": prep.system,
                    "messages": [{"role": "user", "content": prompt}]}

        return task("notes"), task("assessment")

    def _summarise(self, system_prompt: str, meta: SourceMeta, ctx: GenerationContext,
                   text: str, part: int, parts: int, start: float,
                   end: float) -> tuple[str, Usage]:
        def parse(reply: str) -> str:
            if not has_timestamp(reply):
                raise MalformedReplyError(f"Claude's notes of part {part} cited no moment")
            return reply

        prompt = render_prompt("chunk", ctx.prompts_dir, part=part, parts=parts,
                               start=format_timestamp(start), end=format_timestamp(end),
                               language=ctx.language)
        block = source_block(meta, ctx.related_notes, text)
        params = {"model": self.small_model, "max_tokens": self.max_tokens,
                  "system": [{"type": "text", "text": system_prompt},
                             {"type": "text", "text": block}],
                  "messages": [{"role": "user", "content": prompt}]}
        summary, usage = self.client.call(params, what=f"notes of part {part} of {parts}",
                                          parse=_checked(f"notes of part {part}", parse))
        return summary, usage
