"""The backend contract every generator implements, and the job spec workers receive.

A backend is constructed in the worker process from the config dict and turns one
transcript plus metadata into a :class:`VideoContent`. It raises only
:mod:`daemon.errors` types so the dispatcher can decide retries by type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.errors import EmptyTranscriptError
from vault_tools.models import SourceMeta, Transcript, VideoContent

DEFAULT_MIN_WORDS = 10  # the default of youtube.min_transcript_words


def min_words(config: dict[str, dict[str, Any]]) -> int:
    """The one word limit for every source: ``youtube.min_transcript_words`` (the
    documented setting; its table is where it was first added)."""
    return int(config.get("youtube", {}).get("min_transcript_words", DEFAULT_MIN_WORDS))


def check_enough_words(transcript: Transcript, config: dict[str, dict[str, Any]]) -> None:
    """Fail a transcript under the limit as empty before any backend sees it."""
    words = len(transcript.text.split())
    if words == 0 or words < min_words(config):
        raise EmptyTranscriptError(
            "the transcript is empty: no words to study from" if words == 0 else
            f"the transcript has only {words} word{'' if words == 1 else 's'}, too "
            "little to study from")


@dataclass(frozen=True)
class RelatedNote:
    """An existing vault note the model may link to as ``[[title|surface text]]``."""

    title: str
    aliases: tuple[str, ...] = ()


@dataclass
class GenerationContext:
    config: dict[str, dict[str, Any]]  # Config.to_dict()
    state_dir: str  # per-vault state folder (caches, locks)
    related_notes: list[RelatedNote] = field(default_factory=list)
    prompts_dir: str | None = None  # <vault>/.vaultd/prompts, overrides packaged prompts

    @property
    def language(self) -> str:
        return str(self.config["generate"]["language"])


class Backend(Protocol):
    name: str

    def generate(
        self, transcript: Transcript, meta: SourceMeta, ctx: GenerationContext
    ) -> VideoContent: ...


@dataclass
class JobSpec:
    """Everything a worker needs for one job; pickled into the process pool.

    For local subtitle files the dispatcher reads the file and passes its text, so
    workers never open vault files.
    """

    key: str
    kind: str  # "youtube" | "file"
    backend: str  # resolved: "offline" | "claude" | "openai"
    context: GenerationContext
    video_id: str | None = None
    url: str | None = None
    file_path: str | None = None  # vault-relative
    file_text: str | None = None
