"""Transcript + metadata cache: ``<state_dir>/transcripts/<video id>.json``.

Fetching from YouTube is the slow, rate-limited and ban-prone step, so its result is
kept per video and a retry (say, after the model API failed) or a regeneration never
asks YouTube again. An entry records the request that produced it (languages, manual
preference, translation target); when those settings change the entry no longer
matches and the video is fetched again. Writes are atomic (temp file, ``os.replace``),
so concurrent workers leave either the old entry or the new one. There is no fsync: this
is a cache, and an entry a power cut truncates is unreadable, which counts as a miss (the
video is fetched again); the fsync cost every worker a few milliseconds per video.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from vault_tools.models import Chapter, Segment, SourceMeta, Transcript

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def cache_path(state_dir: Path, video_id: str) -> Path:
    return Path(state_dir) / "transcripts" / f"{video_id}.json"


def _meta_to_dict(meta: SourceMeta) -> dict[str, Any]:
    return asdict(meta)


def _meta_from_dict(data: dict[str, Any], extra: dict[str, Any]) -> SourceMeta:
    known = {f.name for f in fields(SourceMeta)}
    values = {k: v for k, v in {**extra, **data}.items() if k in known}
    values["chapters"] = [Chapter(float(c["start"]), str(c["title"]))
                          for c in data.get("chapters", [])]
    return SourceMeta(**values)


def load(
    state_dir: Path, video_id: str, request: dict[str, Any]
) -> tuple[Transcript, SourceMeta] | None:
    """The cached result for ``video_id`` fetched with ``request``, or None."""
    path = cache_path(state_dir, video_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable transcript cache %s: %s", path, exc)
        return None
    try:
        if data.get("version") != CACHE_VERSION or data.get("request") != request:
            return None
        raw = data["transcript"]
        transcript = Transcript(
            segments=[Segment(float(s), float(d), str(t)) for s, d, t in raw["segments"]],
            language=str(raw["language"]),
            is_generated=bool(raw["is_generated"]),
        )
        meta = _meta_from_dict(data["meta"], data.get("extra", {}))
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring malformed transcript cache %s: %s", path, exc)
        return None
    return transcript, meta


def store(
    state_dir: Path,
    video_id: str,
    request: dict[str, Any],
    transcript: Transcript,
    meta: SourceMeta,
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the entry atomically. ``extra`` keeps metadata SourceMeta has no field for
    (e.g. keywords); it is handed back on load when SourceMeta gains that field."""
    path = cache_path(state_dir, video_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": CACHE_VERSION,
        "video_id": video_id,
        "request": request,
        "transcript": {
            "language": transcript.language,
            "is_generated": transcript.is_generated,
            "segments": [[s.start, s.duration, s.text] for s in transcript.segments],
        },
        "meta": _meta_to_dict(meta),
        "extra": extra or {},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{video_id}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False)  # no fsync: a cache (see top)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
