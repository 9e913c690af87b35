"""Plain data shared by every stage: transcripts, source metadata, generated content.

These types cross process boundaries (worker -> dispatcher) and are persisted in the
ledger as JSON, so they hold only JSON-friendly fields and round-trip through
``to_json``/``from_json`` without loss.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Segment:
    """One timed piece of a transcript (a caption cue)."""

    start: float  # seconds from the start of the video
    duration: float
    text: str


@dataclass(frozen=True)
class Chapter:
    start: float
    title: str


@dataclass
class Transcript:
    segments: list[Segment]
    language: str = "en"
    is_generated: bool = False

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def end(self) -> float:
        if not self.segments:
            return 0.0
        last = self.segments[-1]
        return last.start + max(last.duration, 0.0)


@dataclass
class SourceMeta:
    """What we know about a source besides its words.

    ``key`` is the ledger key: ``youtube:<video id>`` or ``file:<vault-relative path>``.
    ``url`` is the canonical URL for YouTube (``https://www.youtube.com/watch?v=ID``) and
    None for local subtitle files, whose vault path is in ``file_path``.
    """

    key: str
    kind: str  # "youtube" | "file"
    title: str
    url: str | None = None
    video_id: str | None = None
    file_path: str | None = None
    channel: str = ""
    duration: float | None = None  # seconds
    published: str | None = None  # ISO date (YYYY-MM-DD)
    description: str = ""
    chapters: list[Chapter] = field(default_factory=list)
    language: str = "en"

    def timestamp_url(self, seconds: float) -> str | None:
        """Link that opens the video at ``seconds``, or None when there is no video."""
        if self.kind == "youtube" and self.video_id:
            return f"https://youtu.be/{self.video_id}?t={int(seconds)}"
        return None


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            round(self.cost_usd + other.cost_usd, 6),
        )


@dataclass
class VideoContent:
    """Everything a worker produced for one source; the writer turns it into files.

    ``note_markdown`` and ``assessment_markdown`` are bodies without frontmatter; the
    writer adds frontmatter, links and sanitises before anything reaches the vault.
    """

    meta: SourceMeta
    note_markdown: str
    assessment_markdown: str
    model: str
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    key_terms: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    salvaged: int = 0  # replies used although off the requested format
    continued: int = 0  # replies cut at the output limit and continued

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> VideoContent:
        data: dict[str, Any] = json.loads(raw)
        meta = dict(data["meta"])
        meta["chapters"] = [Chapter(**c) for c in meta.get("chapters", [])]
        data["meta"] = SourceMeta(**meta)
        data["usage"] = Usage(**data.get("usage", {}))
        return cls(**data)


def format_timestamp(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def timestamp_link(meta: SourceMeta, seconds: float) -> str:
    """Markdown for a timestamp: clickable for videos, plain code text for local files."""
    label = format_timestamp(seconds)
    url = meta.timestamp_url(seconds)
    return f"[{label}]({url})" if url else f"`{label}`"
