"""Audio and video files in the vault as sources (``media:<fingerprint>`` jobs).

Identity: a content fingerprint (SHA-256 of the size and the first and last 4 MiB), so a
renamed or moved recording is the same source and is never transcribed twice; the vault
path is what the user sees (ledger ``url``, the note's ``source``). Fingerprinting reads
at most 8 MiB however large the file, so the inbox pass stays quick.

Reads go through :func:`gate`: a regular file inside the vault's real root, reached
without leaving it through a symlink, checked at the moment of use. A file whose size
or modification time changed within ``SETTLE_SECONDS`` is still being copied in and is
not identified yet (the next inbox scan picks it up).

The generation worker never decodes audio: :func:`load` reads the transcript the
transcription pool cached; without one it raises :class:`NeedsTranscriptionError`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from daemon.errors import NeedsTranscriptionError, SourceNotFoundError
from daemon.generate.worker import title_from_filename
from daemon.sources.transcribe import EngineSettings, cache_key, load_cached, unavailable_reason
from vault_tools.models import SourceMeta, Transcript

KIND = "media"
SETTLE_SECONDS = 3.0
_EDGE = 4 * 1024 * 1024


def gate(vault: Path, rel: str) -> Path:
    """The real path of ``rel`` if it is a regular file inside the vault's real root.

    Raises :class:`SourceNotFoundError` with a plain reason otherwise (missing, a
    folder, outside the vault, or reached through a symlink that leaves it).
    """
    root = vault.resolve()
    try:
        real = (root / rel).resolve(strict=True)
        real.relative_to(root)
        mode = real.stat().st_mode
    except FileNotFoundError:
        raise SourceNotFoundError(f"media file not found in the vault: {rel}") from None
    except ValueError:
        raise SourceNotFoundError(f"{rel} is outside the vault") from None
    except OSError as exc:
        raise SourceNotFoundError(f"cannot read {rel}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise SourceNotFoundError(f"{rel} is not a regular file")
    return real


def settled(path: Path, seconds: float = SETTLE_SECONDS, now: float | None = None) -> bool:
    """True when the file has not changed for ``seconds`` (it is not being copied)."""
    try:
        st = path.stat()
    except OSError:
        return False
    return (now if now is not None else time.time()) - st.st_mtime >= seconds


def fingerprint(path: Path) -> str:
    """Content identity: SHA-256 over the size, the first and the last 4 MiB."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(str(size).encode())
        h.update(f.read(_EDGE))
        if size > 2 * _EDGE:
            f.seek(size - _EDGE)
            h.update(f.read(_EDGE))
        elif size > _EDGE:
            h.update(f.read())
    return h.hexdigest()[:24]


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
        raise NeedsTranscriptionError(f"{Path(rel).name}: {why}" if why
                                      else f"{rel} needs transcription")
    transcript, extra = cached
    meta = SourceMeta(key=key, kind=KIND, title=title_from_filename(rel), file_path=rel,
                      duration=round(float(extra.get("duration") or transcript.end), 3),
                      language=transcript.language)
    return transcript, meta
