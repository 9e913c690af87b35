"""Audio and video files in the vault as sources (``media:<fingerprint>`` jobs).

Identity: a content fingerprint (SHA-256 of the size and the first and last 4 MiB), so a
renamed or moved recording is the same source and is never transcribed twice; the vault
path is what the user sees (ledger ``url``, the note's ``source``). Fingerprinting reads
at most 8 MiB however large the file, so the inbox pass stays quick.

Reads go through the vault's path gate (:mod:`vault_tools.pathgate`, :func:`open_media`):
a regular file inside the vault's real root, never through a symlink out (unless the
vault allows it), checked at the moment of use; the transcriber reads the opened file.
A file modified within ``SETTLE_SECONDS`` is still being copied in and is not
identified yet (the next inbox scan picks it up).

The generation worker never decodes audio: :func:`load` reads the transcript the
transcription pool cached; without one it raises :class:`NeedsTranscriptionError`.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from daemon.errors import NeedsTranscriptionError, PathRefusedError, SourceNotFoundError
from daemon.sources.subtitle_file import title_from_filename
from daemon.sources.transcribe import EngineSettings, cache_key, load_cached, unavailable_reason
from vault_tools.models import SourceMeta, Transcript
from vault_tools.pathgate import PathGate, PathRefused

KIND = "media"
SETTLE_SECONDS = 3.0
_EDGE = 4 * 1024 * 1024


def open_media(gate: PathGate, rel: str) -> BinaryIO:
    """The recording at ``rel``, opened for reading through the vault's path gate.

    Raises :class:`PathRefusedError` (outside the vault, a symlink out, not a regular
    file) or :class:`SourceNotFoundError` with a plain reason.
    """
    try:
        fd = gate.open_read(rel)
    except PathRefused as exc:
        raise PathRefusedError.from_gate(exc) from None
    except FileNotFoundError:
        raise SourceNotFoundError(f"media file not found in the vault: {rel}") from None
    except IsADirectoryError:
        raise SourceNotFoundError(f"{rel} is a folder, not a media file") from None
    except OSError as exc:
        raise SourceNotFoundError(f"cannot read {rel}: {exc.strerror or exc}") from None
    return os.fdopen(fd, "rb")


def settled(gate: PathGate, rel: str, seconds: float = SETTLE_SECONDS,
            now: float | None = None) -> bool:
    """True when the file has not changed for ``seconds`` (it is not being copied in)."""
    try:
        st = gate.stat(rel)
    except (OSError, PathRefused):
        return False
    return (now if now is not None else time.time()) - st.st_mtime >= seconds


def fingerprint(f: BinaryIO) -> str:
    """Content identity: SHA-256 over the size, the first and the last 4 MiB."""
    h = hashlib.sha256()
    size = os.fstat(f.fileno()).st_size
    h.update(str(size).encode())
    f.seek(0)
    h.update(f.read(_EDGE))
    if size > 2 * _EDGE:
        f.seek(size - _EDGE)
        h.update(f.read(_EDGE))
    elif size > _EDGE:
        h.update(f.read())
    f.seek(0)
    return h.hexdigest()[:24]


class Fingerprints:
    """Content keys of vault recordings, remembered by (size, mtime, inode) so that an
    inbox pass reads a recording only when it changed (the inbox is read on every edit
    and every rescan; a lecture folder may hold gigabytes)."""

    MAX = 10_000

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, int, int], str]] = {}

    def key_of(self, gate: PathGate, rel: str, now: float | None = None) -> str | None:
        """``media:<fingerprint>``, or None while the file is still being copied in.

        Raises :class:`PathRefusedError` / :class:`SourceNotFoundError` like
        :func:`open_media`."""
        try:
            st = gate.stat(rel)
        except PathRefused as exc:
            raise PathRefusedError.from_gate(exc) from None
        except OSError as exc:
            raise SourceNotFoundError(f"cannot read {rel}: {exc.strerror or exc}") from None
        if (now if now is not None else time.time()) - st.st_mtime < SETTLE_SECONDS:
            return None
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        known = self._known.get(rel)
        if known is not None and known[0] == stamp:
            return known[1]
        with open_media(gate, rel) as recording:
            key = f"{KIND}:{fingerprint(recording)}"
        if len(self._known) >= self.MAX:
            self._known.clear()
        self._known[rel] = (stamp, key)
        return key


def speech_key(ledger_key: str, config: dict[str, dict[str, Any]]) -> str:
    """Cache key of a source's transcription under the configured engine."""
    return cache_key(ledger_key, EngineSettings.from_config(config))


def load(key: str, rel: str, config: dict[str, dict[str, Any]], state_dir: Path
         ) -> tuple[Transcript, SourceMeta]:
    """Transcript (from the transcription cache) and metadata of a media job."""
    settings = EngineSettings.from_config(config)
    cached = load_cached(state_dir, speech_key(key, config))
    if cached is None:
        why = unavailable_reason(settings)
        raise NeedsTranscriptionError(f"{rel}: {why}" if why
                                      else f"{rel} needs transcription")
    transcript, extra = cached
    meta = SourceMeta(key=key, kind=KIND, title=title_from_filename(rel), file_path=rel,
                      duration=round(float(extra.get("duration") or transcript.end), 3),
                      language=transcript.language)
    return transcript, meta
