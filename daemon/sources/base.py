"""The source seam: what every kind of source provides, and the table of kinds.

A source kind (``youtube``, ``file``, ``media``...) is one module behind the
:class:`Source` protocol plus one line in :data:`SOURCES` (and, for inbox links, one
line in :data:`vault_tools.sources.FILE_KINDS` or the URL recognisers there):

* identity: the ledger key, decided when the inbox is read (:mod:`daemon.writer.inbox_sync`);
* :meth:`Source.load`: transcript with timed segments plus metadata, in a generation
  worker (``stats`` reports the requests it made); a source whose words must first be heard raises
  :class:`~daemon.errors.NeedsTranscriptionError`, and the dispatcher sends the job to
  the transcription pool (:mod:`daemon.jobs.transcription_pool`), which caches the transcript and
  reports progress (seconds heard of the total) for the inbox line;
* ``transcribable``: whether that pool can produce the transcript for this kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from daemon.errors import InvalidSourceError, NeedsTranscriptionError, TranscriptUnavailableError
from daemon.sources.transcribe import (
    EngineSettings,
    cache_key,
    load_cached,
    unavailable_reason,
)
from vault_tools.models import SourceMeta, Transcript

if TYPE_CHECKING:  # the spec's type only: sources never import generate at run time
    from daemon.generate.base import JobSpec


class Source(Protocol):
    kind: str
    transcribable: bool

    def load(self, spec: JobSpec, stats: dict[str, int] | None = None
             ) -> tuple[Transcript, SourceMeta]: ...


class SubtitleFileSource:
    kind = "file"
    transcribable = False

    def load(self, spec: JobSpec, stats: dict[str, int] | None = None
             ) -> tuple[Transcript, SourceMeta]:
        from daemon.sources.subtitle_file import load_file_source

        return load_file_source(spec)


class MediaSource:
    kind = "media"
    transcribable = True

    def load(self, spec: JobSpec, stats: dict[str, int] | None = None
             ) -> tuple[Transcript, SourceMeta]:
        from daemon.sources import media

        assert spec.file_path is not None
        return media.load(spec.key, spec.file_path, spec.context.config,
                          Path(spec.context.state_dir))


class PodcastSource:
    """An episode's audio URL: always heard (transcribed) first; metadata from its feed."""

    kind = "podcast"
    transcribable = True

    def load(self, spec: JobSpec, stats: dict[str, int] | None = None
             ) -> tuple[Transcript, SourceMeta]:
        from daemon.sources.cache import _meta_from_dict

        config, state = spec.context.config, Path(spec.context.state_dir)
        settings = EngineSettings.from_config(config)
        heard = load_cached(state, cache_key(spec.key, settings))
        if heard is None:
            why = unavailable_reason(settings)
            raise NeedsTranscriptionError(f"A podcast episode: {why}" if why
                                          else "the episode needs transcription")
        transcript, extra = heard
        meta = _meta_from_dict(extra, {})
        meta.language = transcript.language
        return transcript, meta


# Reasons (daemon.sources.youtube) that mean "no captions", not "no video".
_CAPTIONLESS = ("subtitles turned off", "has no subtitles", "gave no transcript",
                "found no usable subtitles", "found no json3 subtitles")


class YouTubeSource:
    kind = "youtube"
    transcribable = True

    def load(self, spec: JobSpec, stats: dict[str, int] | None = None
             ) -> tuple[Transcript, SourceMeta]:
        from daemon.sources.cache import _meta_from_dict
        from daemon.sources.youtube import fetch_youtube

        assert spec.video_id is not None
        config, state = spec.context.config, Path(spec.context.state_dir)
        settings = EngineSettings.from_config(config)
        if settings.enabled and (heard := load_cached(state, cache_key(spec.key, settings))):
            transcript, extra = heard
            meta = _meta_from_dict(extra, {})
            meta.language = transcript.language
            return transcript, meta
        try:
            return fetch_youtube(spec.video_id, config, state, stats=stats)
        except TranscriptUnavailableError as exc:
            if not any(k in exc.reason for k in _CAPTIONLESS):
                raise
            if why := unavailable_reason(settings):
                if not settings.enabled:
                    why = ("To transcribe its audio: pip install faster-whisper yt-dlp, "
                           'set engine = "faster-whisper" under transcribe (docs/media.md)')
                said = exc.reason.split(",")[0].rstrip(".")
                raise TranscriptUnavailableError(f"{said}. {why}") from None
            from daemon.sources import ytdlp

            if not ytdlp.available():
                raise TranscriptUnavailableError(
                    "No captions; transcribing its audio needs yt-dlp: pip install yt-dlp "
                    "(the ytdlp extra of vaultd)") from None
            raise NeedsTranscriptionError(f"{exc.reason} Transcribing its audio.") from None


SOURCES: dict[str, Source] = {s.kind: s for s in (SubtitleFileSource(), MediaSource(),
                                                  YouTubeSource(), PodcastSource())}


def load_source(spec: JobSpec, stats: dict[str, int] | None = None
                ) -> tuple[Transcript, SourceMeta]:
    """Transcript and metadata of one job's source. ``stats["requests"]``, when asked
    for, counts the requests a remote source answered (YouTube; 0 from a cache)."""
    source = SOURCES.get(spec.kind)
    if source is None:
        raise InvalidSourceError(f"unsupported source kind {spec.kind!r}")
    return source.load(spec, stats)


def transcribable(kind: str) -> bool:
    source = SOURCES.get(kind)
    return bool(source and source.transcribable)
