"""What the model reads about a video: the timestamped transcript and, for long videos,
the plan that cuts it into parts.

Owns the exact text of the *source block*, the cached prefix shared by the notes call
and the assessment call. It must be a pure function of its inputs so both calls send it
byte for byte identical (or the second call would pay for the transcript again).

Transcript cues are merged into lines of about ``LINE_SECONDS`` seconds, each starting
with its timestamp (``[12:34] text``): timestamps are what the model cites, so every line
carries one, without paying for a timestamp per two-second caption cue.

Transcripts beyond the context budget are split by :func:`plan_chunks` along chapters
(grouping small ones) or, without chapters, into even time windows. Every line lands in
exactly one chunk: nothing is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vault_tools.models import Chapter, SourceMeta, Transcript, format_timestamp

from .base import RelatedNote

LINE_SECONDS = 12.0
LINE_CHARS = 240
CHARS_PER_TOKEN = 3.5  # conservative for English; other scripts cost more, see docs


@dataclass(frozen=True)
class Line:
    start: float
    text: str

    def render(self) -> str:
        return f"[{format_timestamp(self.start)}] {self.text}"


@dataclass
class Chunk:
    start: float
    end: float
    lines: list[Line]
    title: str = ""

    @property
    def text(self) -> str:
        return "\n".join(line.render() for line in self.lines)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def transcript_lines(transcript: Transcript) -> list[Line]:
    """Caption cues merged into timestamped lines (nothing dropped but blank cues)."""
    lines: list[Line] = []
    start: float | None = None
    parts: list[str] = []
    for seg in transcript.segments:
        words = " ".join(seg.text.split())
        if not words:
            continue
        if start is None:
            start = seg.start
        elif seg.start - start >= LINE_SECONDS or sum(map(len, parts)) >= LINE_CHARS:
            lines.append(Line(start, " ".join(parts)))
            start, parts = seg.start, []
        parts.append(words)
    if start is not None and parts:
        lines.append(Line(start, " ".join(parts)))
    return lines


def source_block(meta: SourceMeta, related: Sequence[RelatedNote], body: str, *,
                 digest: bool = False, duration: float | None = None) -> str:
    """The cached prefix: metadata, linkable notes, then the transcript (or the digest)."""
    out = [f"# Video: {meta.title}"]
    if meta.channel:
        out.append(f"Channel: {meta.channel}")
    if duration:
        out.append(f"Duration: {format_timestamp(duration)} (no timestamp may be later)")
    if meta.published:
        out.append(f"Published: {meta.published}")
    if meta.chapters:
        out.append("\n## Chapters")
        out.extend(f"- [{format_timestamp(c.start)}] {c.title}" for c in meta.chapters)
    if meta.description.strip():
        out.append("\n## Description (from the uploader)")
        out.append(meta.description.strip()[:2000])
    out.append("\n## Existing notes (the only notes you may link to)")
    if related:
        for note in related:
            aka = f" (also called: {', '.join(note.aliases)})" if note.aliases else ""
            out.append(f"- {note.title}{aka}")
    else:
        out.append("- (none: write no [[links]])")
    if digest:
        out.append("\n## Detailed notes of the whole video, part by part")
        out.append("(The video was too long to include its transcript; these notes were "
                   "written from every part of it and keep its timestamps.)\n")
    else:
        out.append("\n## Transcript")
    out.append(body)
    return "\n".join(out)


def _width(line: Line) -> int:
    return len(line.render()) + 1


def _split_even(lines: list[Line], budget_chars: int) -> list[list[Line]]:
    """Consecutive groups of similar size, none over ``budget_chars`` (unless one line is)."""
    total = sum(map(_width, lines))
    n = max(math.ceil(total / budget_chars), 1)
    limit = min(total / n * 1.05, budget_chars)
    groups: list[list[Line]] = [[]]
    size = 0
    for line in lines:
        if groups[-1] and size + _width(line) > limit:
            groups.append([])
            size = 0
        groups[-1].append(line)
        size += _width(line)
    return groups


def plan_chunks(lines: list[Line], chapters: Sequence[Chapter], budget_tokens: int,
                end: float) -> list[Chunk]:
    """Cut ``lines`` into chunks of at most about ``budget_tokens`` each."""
    budget_chars = max(int(budget_tokens * CHARS_PER_TOKEN), 200)
    groups: list[tuple[str, list[Line]]] = []
    marks = sorted(chapters, key=lambda c: c.start)
    if len(marks) >= 2:
        sections: list[tuple[str, list[Line]]] = [(c.title, []) for c in marks]
        for line in lines:
            idx = max((i for i, c in enumerate(marks) if c.start <= line.start), default=0)
            sections[idx][1].append(line)
        current: tuple[str, list[Line]] | None = None
        for title, sec in sections:
            if not sec:
                continue
            sec_chars = sum(map(_width, sec))
            if sec_chars > budget_chars:
                if current:
                    groups.append(current)
                    current = None
                groups.extend((title, g) for g in _split_even(sec, budget_chars))
                continue
            if current and sum(map(_width, current[1])) + sec_chars <= budget_chars:
                current = (f"{current[0]}; {title}", current[1] + sec)
            else:
                if current:
                    groups.append(current)
                current = (title, list(sec))
        if current:
            groups.append(current)
    else:
        groups = [("", g) for g in _split_even(lines, budget_chars)]
    chunks: list[Chunk] = []
    for i, (title, group) in enumerate(groups):
        stop = groups[i + 1][1][0].start if i + 1 < len(groups) else end
        chunks.append(Chunk(group[0].start, max(stop, group[-1].start), group, title))
    return chunks
