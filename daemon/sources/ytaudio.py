"""Caption-less YouTube videos: download the audio with yt-dlp, transcribe it.

Runs in the transcription pool. The audio lands in ``<state>/downloads/`` (only the
audio format, never the picture) and is deleted once its transcript is cached; after a
crash or a stop the partial download is continued and the partial transcript resumed.
The video's metadata (title, channel, date, duration, chapters) is stored with the
transcript, so the generation worker needs nothing more from YouTube.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from daemon.errors import (
    JobError,
    NetworkError,
    OfflineError,
    PermanentError,
    TranscriptUnavailableError,
)
from daemon.sources.transcribe import EngineSettings, transcribe_file

log = logging.getLogger("vaultd.ytaudio")


def _download_error(exc: Exception) -> JobError:
    text = " ".join(str(exc).split())
    low = text.lower()
    if any(w in low for w in ("timed out", "temporary failure", "connection", "network is",
                              "name or service")):
        return OfflineError("Could not reach YouTube to download the audio (no network?); "
                            "vaultd will retry.")
    if "429" in low or "too many requests" in low:
        return NetworkError("YouTube says too many requests; vaultd will wait and retry.")
    return TranscriptUnavailableError(f"yt-dlp could not download the audio: {text[:120]}")


def transcribe_video(video_id: str, config: dict[str, dict[str, Any]], state_dir: Path,
                     key: str, settings: EngineSettings) -> None:
    """Download ``video_id``'s audio and transcribe it into the speech cache at ``key``."""
    from daemon.sources import ytdlp
    from daemon.sources.http import proxy_config_from
    from daemon.sources.youtube import split_meta

    if not ytdlp.available():
        raise PermanentError("No captions; transcribing its audio needs yt-dlp: pip install "
                             "yt-dlp (the ytdlp extra of vaultd)")
    folder = Path(state_dir) / "downloads"
    try:
        path, info = ytdlp.download_audio(video_id, proxy_config_from(config), folder, config)
    except JobError:
        raise
    except Exception as exc:  # noqa: BLE001 - yt-dlp's DownloadError and friends
        raise _download_error(exc) from None
    meta, _extra = split_meta(ytdlp.info_fields(video_id, info))
    if not meta.title:
        meta.title = f"YouTube video {video_id}"
    transcript = transcribe_file(path, state_dir, key, settings, meta=asdict(meta))
    path.unlink(missing_ok=True)
    log.info("%s: transcribed %d segments from the audio", video_id, len(transcript.segments))
