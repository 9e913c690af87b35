"""A subtitle or transcript file in the vault (``.srt``, ``.vtt``, ``.txt``) as a source.

The dispatcher reads the file through the path gate and puts its text into the job spec,
so a worker never opens a vault file; this module only parses that text.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from daemon.errors import EmptyTranscriptError
from vault_tools.models import SourceMeta, Transcript

if TYPE_CHECKING:  # the spec's type only: sources never import generate at run time
    from daemon.generate.base import JobSpec


def title_from_filename(path: str) -> str:
    """``Lectures/TCP-congestion_control.vtt`` -> ``TCP congestion control``: an
    all-lower-case name gets a capital first letter; any other casing (an acronym) is kept."""
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
