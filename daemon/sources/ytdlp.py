"""Optional yt-dlp support (``pip install 'vaultd[ytdlp]'``): caption fallback and
flat playlist extraction.

yt-dlp is a large, fast-moving extractor that often keeps working when YouTube
changes something youtube-transcript-api depends on. vaultd never requires it: this
module owns every use of it, imports it lazily, and reports ``available()`` so callers
can skip it. yt-dlp's own requests (the player/page lookups) do not pass our pacing
gate; it is given the configured proxy. The caption file itself is downloaded through
our paced session and parsed from YouTube's ``json3`` format.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import requests
from youtube_transcript_api.proxies import ProxyConfig

from daemon.errors import EmptyTranscriptError, TranscriptUnavailableError
from daemon.sources.ytcommon import (
    WATCH_URL,
    meta_fields,
    parse_chapters,
    pick_language,
)
from vault_tools.models import Chapter, Segment, Transcript

PLAYLIST_URL = "https://www.youtube.com/playlist?list={}"


def available() -> bool:
    """True when ``yt_dlp`` can be imported (checked without importing it)."""
    if "yt_dlp" in sys.modules:
        return sys.modules["yt_dlp"] is not None
    return importlib.util.find_spec("yt_dlp") is not None


def _options(proxy: ProxyConfig | None, **extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {"quiet": True, "no_warnings": True, "skip_download": True, **extra}
    if proxy is not None:
        opts["proxy"] = proxy.to_requests_dict()["https"]
    return opts


def _extract(url: str, opts: dict[str, Any]) -> dict[str, Any]:
    import yt_dlp

    with yt_dlp.YoutubeDL(opts) as ydl:
        info = ydl.extract_info(url, download=False)
    return info if isinstance(info, dict) else {}


def playlist(playlist_id: str, proxy: ProxyConfig | None) -> list[tuple[str, str]]:
    """Flat extraction: ids and titles without visiting each video."""
    info = _extract(PLAYLIST_URL.format(playlist_id),
                    _options(proxy, extract_flat="in_playlist"))
    return [(str(e["id"]), str(e.get("title") or ""))
            for e in info.get("entries") or [] if isinstance(e, dict) and e.get("id")]


def parse_json3(body: str) -> list[Segment]:
    """Segments from YouTube's ``json3`` caption format (``events[].segs[].utf8``)."""
    try:
        events = json.loads(body).get("events", [])
    except (ValueError, AttributeError) as exc:
        raise EmptyTranscriptError("The subtitles of this video could not be read.") from exc
    segments = []
    for event in events:
        text = " ".join("".join(s.get("utf8", "") for s in event.get("segs") or []).split())
        if text:
            segments.append(Segment(event.get("tStartMs", 0) / 1000,
                                    event.get("dDurationMs", 0) / 1000, text))
    return segments


def _generated_codes(auto: dict[str, Any]) -> dict[str, str]:
    """Language code -> key for automatic captions, preferring ``xx-orig`` (the real
    speech recognition) over YouTube's machine translations listed under ``xx``."""
    codes: dict[str, str] = {}
    for key in sorted(auto, key=lambda k: not k.endswith("-orig")):
        codes.setdefault(key.removesuffix("-orig"), key)
    return codes


def fetch_captions(
    video_id: str,
    session: requests.Session,
    proxy: ProxyConfig | None,
    request: dict[str, Any],
) -> tuple[Transcript, dict[str, Any]]:
    """Transcript and metadata fields (as :func:`youtube.meta_fields`) via yt-dlp."""
    info = _extract(WATCH_URL.format(video_id), _options(proxy, noplaylist=True))
    manual: dict[str, Any] = info.get("subtitles") or {}
    auto: dict[str, Any] = info.get("automatic_captions") or {}
    generated = _generated_codes(auto)
    target = request["translate_to"]
    picked = pick_language(
        list(request["languages"]) + ([target] if target else []),
        list(manual), list(generated),
        prefer_manual=request["prefer_manual"], any_language=request["any_language"],
    )
    if picked is None:
        raise TranscriptUnavailableError("yt-dlp found no usable subtitles for this video.")
    code, is_generated = picked
    formats = auto[generated[code]] if is_generated else manual[code]
    url = next((f["url"] for f in formats if f.get("ext") == "json3" and f.get("url")), None)
    if url is None:
        raise TranscriptUnavailableError("yt-dlp found no json3 subtitles for this video.")
    response = session.get(url)
    response.raise_for_status()
    transcript = Transcript(parse_json3(response.text), language=code,
                            is_generated=is_generated)
    return transcript, info_fields(video_id, info)


def info_fields(video_id: str, info: dict[str, Any]) -> dict[str, Any]:
    """Metadata fields (as :func:`youtube.meta_fields`) from a yt-dlp info dict."""
    values = meta_fields(video_id, None)
    duration = float(info["duration"]) if info.get("duration") else None
    description = str(info.get("description") or "")
    chapters = [Chapter(float(c["start_time"]), str(c.get("title") or ""))
                for c in info.get("chapters") or [] if "start_time" in c]
    upload = str(info.get("upload_date") or "")
    values.update(
        title=str(info.get("title") or ""),
        channel=str(info.get("channel") or info.get("uploader") or ""),
        duration=duration,
        published=f"{upload[:4]}-{upload[4:6]}-{upload[6:8]}" if len(upload) == 8 else None,
        description=description,
        chapters=chapters or parse_chapters(description, duration),
        keywords=list(info.get("tags") or []),
    )
    return values


def download_audio(video_id: str, proxy: ProxyConfig | None, folder: Path,
                   config: dict[str, dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The best audio-only format of a video into ``folder`` (resumable), and its info.

    Same proxy and pacing as every other YouTube request (``youtube.proxy``,
    ``min_request_interval_seconds``, ``timeout_seconds``); no picture is downloaded.
    """
    yt = config["youtube"]
    folder.mkdir(parents=True, exist_ok=True)
    opts = _options(proxy, skip_download=False, noplaylist=True, format="bestaudio/best",
                    outtmpl=str(folder / f"{video_id}.%(ext)s"), continuedl=True,
                    noprogress=True, sleep_interval_requests=yt["min_request_interval_seconds"],
                    socket_timeout=yt["timeout_seconds"])
    import yt_dlp

    with yt_dlp.YoutubeDL(opts) as ydl:
        info = ydl.extract_info(WATCH_URL.format(video_id), download=True)
    info = info if isinstance(info, dict) else {}
    files = [d.get("filepath") for d in info.get("requested_downloads") or []]
    path = Path(files[0]) if files and files[0] else None
    if path is None or not path.is_file():
        raise TranscriptUnavailableError("yt-dlp downloaded no audio for this video.")
    return path, info
