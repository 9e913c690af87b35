"""The function the process pool runs: one JobSpec in, VideoContent JSON out.

Pure with respect to the vault and the ledger (it touches neither): it fetches the
transcript (YouTube) or parses the text the dispatcher read (local files), picks the
backend, and generates. Errors leave as :mod:`daemon.errors` types, which pickle.
Backends are built once per worker process and reused.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath

from daemon.errors import EmptyTranscriptError, JobError, PermanentError
from daemon.generate.base import Backend, JobSpec
from vault_tools.models import SourceMeta, Transcript

log = logging.getLogger("vaultd.worker")

MIN_WORDS = 30
_backends: dict[str, Backend] = {}


def title_from_filename(path: str) -> str:
    """``Lectures/tcp-congestion_control.vtt`` -> ``Tcp congestion control``."""
    stem = PurePosixPath(path).stem
    words = re.sub(r"[_\-.]+", " ", stem).strip()
    if not words:
        return "Untitled transcript"
    return words[0].upper() + words[1:] if words.islower() else words


def load_file_source(spec: JobSpec) -> tuple[Transcript, SourceMeta]:
    from vault_tools.subtitles import SubtitleParseError, parse_subtitles

    assert spec.file_path is not None and spec.file_text is not None
    try:
        transcript = parse_subtitles(spec.file_text, spec.file_path)
    except SubtitleParseError as exc:
        raise EmptyTranscriptError(str(exc)) from exc
    meta = SourceMeta(key=spec.key, kind="file", title=title_from_filename(spec.file_path),
                      file_path=spec.file_path, duration=round(transcript.end, 3),
                      language=transcript.language)
    return transcript, meta


def load_source(spec: JobSpec) -> tuple[Transcript, SourceMeta]:
    from daemon.sources.base import load_source as load  # the table of source kinds

    return load(spec)


def get_backend(spec: JobSpec) -> Backend:
    backend = _backends.get(spec.backend)
    if backend is None:
        if spec.backend == "claude":
            from daemon.generate.claude import ClaudeBackend

            backend = ClaudeBackend(spec.context.config, spec.context.state_dir)
        else:
            from daemon.generate.offline import OfflineBackend

            backend = OfflineBackend()
        _backends[spec.backend] = backend
    return backend


def run_job(spec: JobSpec) -> str:
    """Generate one source. Returns ``VideoContent.to_json()``."""
    try:
        transcript, meta = load_source(spec)
        words = sum(len(s.text.split()) for s in transcript.segments)
        if words < MIN_WORDS:
            raise EmptyTranscriptError(
                "the transcript is empty" if words == 0 else
                f"the transcript has only {words} word{'' if words == 1 else 's'}, too "
                "little to study from")
        content = get_backend(spec).generate(transcript, meta, spec.context)
        return content.to_json()
    except JobError:
        raise
    except Exception as exc:  # a bug or an unexpected library error: say what, fail once
        log.exception("%s: generation crashed", spec.key)
        raise PermanentError(f"internal error while generating: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None


def run_playlist(spec: JobSpec) -> str:
    """Expand a playlist into its videos. Returns JSON ``[[video id, title], ...]``."""
    import json

    from daemon.sources.youtube import expand_playlist

    assert spec.video_id is not None  # the playlist id
    try:
        videos = expand_playlist(spec.video_id, spec.context.config,
                                 Path(spec.context.state_dir))
    except JobError:
        raise
    except Exception as exc:  # noqa: BLE001 - same contract as run_job
        log.exception("%s: playlist expansion crashed", spec.key)
        raise PermanentError(f"internal error while reading the playlist: "
                             f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not videos:
        raise PermanentError("the playlist is empty or private")
    return json.dumps(videos)
