"""What every YouTube module shares: ids, URLs, metadata fields, chapters, caption-track
choice, and the mapping of library and network failures onto :mod:`daemon.errors`.

Split from :mod:`daemon.sources.youtube` so that :mod:`daemon.sources.ytdlp` and
:mod:`daemon.sources.playlist` depend on this module only, and ``youtube`` can import
them at the top: no import circle (``youtube`` re-exports these names for its callers).
"""

from __future__ import annotations

import logging
import re
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import requests
import youtube_transcript_api as yta

from daemon.errors import (
    EmptyTranscriptError,
    InvalidSourceError,
    IpBlockedError,
    JobError,
    NetworkError,
    OfflineError,
    RateLimitedError,
    TranscriptUnavailableError,
)
from vault_tools.models import Chapter, SourceMeta

log = logging.getLogger("daemon.sources.youtube")  # the name its messages always had

VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
WATCH_URL = "https://www.youtube.com/watch?v={}"
OEMBED_URL = "https://www.youtube.com/oembed"


# --------------------------------------------------------------------------- chapters

_TS = r"(?:(?P<h>\d{1,2}):)?(?P<m>\d{1,2}):(?P<s>\d{2})"
_SEP = r"[\s\-–—:|.)\]]*"
_TS_FIRST = re.compile(rf"^\s*[-*•▶►]?\s*[(\[]?{_TS}[)\]]?{_SEP}(?P<title>.*?)\s*$")
_TS_LAST = re.compile(rf"^\s*[-*•]?\s*(?P<title>.*?)[\s\-–—:|(\[]*{_TS}[)\]]?\s*$")


def _seconds(match: re.Match[str]) -> float | None:
    h, m, s = int(match["h"] or 0), int(match["m"]), int(match["s"])
    if s >= 60 or (match["h"] and m >= 60):
        return None
    return float(h * 3600 + m * 60 + s)


def parse_chapters(description: str, duration: float | None = None) -> list[Chapter]:
    """Chapters from description lines such as ``0:00 Intro`` or ``Intro - 1:02:03``.

    Lenient on purpose (YouTube itself wants >= 3 chapters starting at 0:00): at least
    two timestamped lines with a title, kept in increasing order, inside ``duration``.
    """
    chapters: list[Chapter] = []
    for line in description.splitlines():
        match = _TS_FIRST.match(line) or _TS_LAST.match(line)
        if not match:
            continue
        start = _seconds(match)
        title = match["title"].strip(" -–—:|.")
        if start is None or not re.search(r"\w", title) or "://" in title:
            continue
        if duration is not None and start >= duration:
            continue
        if chapters and start <= chapters[-1].start:
            continue
        chapters.append(Chapter(start, title))
    return chapters if len(chapters) >= 2 else []


# --------------------------------------------------------------------------- metadata


class _Recorder:
    """Session response hook keeping what the library fetched: player JSON, watch page
    and the last status / Retry-After (the library turns a 429 into IpBlocked)."""

    def __init__(self) -> None:
        self.player: dict[str, Any] | None = None
        self.watch_html: str | None = None
        self.last_status: int | None = None
        self.retry_after: float | None = None
        self.responses = 0  # every answer YouTube sent for this video (redirects too)

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.responses += 1
        self.last_status = response.status_code
        self.retry_after = retry_after_of(response)
        path = urlsplit(response.url).path
        if not response.ok:
            return
        if path == "/youtubei/v1/player":
            try:
                self.player = response.json()
            except ValueError:
                self.player = None
        elif path == "/watch":
            self.watch_html = response.text


def retry_after_of(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _published(player: dict[str, Any], watch_html: str | None) -> str | None:
    micro = player.get("microformat", {}).get("playerMicroformatRenderer", {})
    candidates = [micro.get("publishDate"), micro.get("uploadDate")]
    if watch_html:
        for pattern in (r'"publishDate":"([^"]+)"', r'itemprop="datePublished" content="([^"]+)"'):
            if found := re.search(pattern, watch_html):
                candidates.append(found.group(1))
    for value in candidates:
        if value and re.match(r"^\d{4}-\d{2}-\d{2}", value):
            return value[:10]
    return None


def meta_fields(
    video_id: str, player: dict[str, Any] | None, watch_html: str | None = None
) -> dict[str, Any]:
    """Every metadata field we know from the player response (keywords included)."""
    details = (player or {}).get("videoDetails", {})
    try:
        duration: float | None = float(details["lengthSeconds"]) or None
    except (KeyError, TypeError, ValueError):
        duration = None
    description = details.get("shortDescription") or ""
    return {
        "key": f"youtube:{video_id}",
        "kind": "youtube",
        "title": details.get("title") or "",
        "url": WATCH_URL.format(video_id),
        "video_id": video_id,
        "channel": details.get("author") or "",
        "duration": duration,
        "published": _published(player or {}, watch_html),
        "description": description,
        "chapters": parse_chapters(description, duration),
        "keywords": list(details.get("keywords") or []),
    }


def split_meta(values: dict[str, Any]) -> tuple[SourceMeta, dict[str, Any]]:
    """SourceMeta from ``values``; fields it has no slot for (keywords) come back apart."""
    known = {f.name for f in fields(SourceMeta)}
    extra = {k: v for k, v in values.items() if k not in known}
    return SourceMeta(**{k: v for k, v in values.items() if k in known}), extra


def meta_from_player(
    video_id: str, player: dict[str, Any] | None, watch_html: str | None = None
) -> SourceMeta:
    return split_meta(meta_fields(video_id, player, watch_html))[0]


def fetch_oembed(video_id: str, session: requests.Session) -> dict[str, Any] | None:
    """Title and author from oEmbed, or None (private/removed video, network trouble)."""
    try:
        response = session.get(
            OEMBED_URL, params={"url": WATCH_URL.format(video_id), "format": "json"}
        )
        if response.ok:
            data = response.json()
            return data if isinstance(data, dict) else None
    except (requests.RequestException, ValueError) as exc:
        log.info("oEmbed lookup for %s failed: %s", video_id, exc)
    return None


# --------------------------------------------------------------------------- errors

REASONS: dict[type[Exception], tuple[type[JobError], str]] = {
    yta.TranscriptsDisabled: (TranscriptUnavailableError,
        "This video has subtitles turned off, so there is no transcript to study from."),
    yta.VideoUnavailable: (TranscriptUnavailableError,
        "This video is unavailable: it was removed, made private, or the link is wrong."),
    yta.InvalidVideoId: (InvalidSourceError, "This is not a valid YouTube video link."),
    yta.AgeRestricted: (TranscriptUnavailableError,
        "This video is age-restricted; YouTube shows it only to signed-in users, so "
        "vaultd cannot read its subtitles."),
    yta.PoTokenRequired: (TranscriptUnavailableError,
        "YouTube now demands a browser token for this video's subtitles, which vaultd "
        "cannot provide (the yt-dlp fallback may help)."),
    yta.FailedToCreateConsentCookie: (TranscriptUnavailableError,
        "YouTube showed a cookie-consent page vaultd could not get past (common in the "
        "EU; a proxy in another country helps)."),
    yta.YouTubeDataUnparsable: (TranscriptUnavailableError,
        "YouTube sent a page vaultd could not read; if this keeps happening, update vaultd."),
    yta.NotTranslatable: (TranscriptUnavailableError,
        "The subtitles of this video cannot be translated."),
    yta.TranslationLanguageNotAvailable: (TranscriptUnavailableError,
        "The subtitles of this video cannot be translated to the note language."),
}
BLOCKED = ("YouTube is blocking requests from this computer's internet address; vaultd "
           "will retry later (a proxy or Tor helps, see docs/youtube.md).")
BOT_CHECK = ("YouTube wants to check that vaultd is not a bot and refuses to answer; vaultd "
             "will retry later (a proxy or Tor helps, see docs/youtube.md).")
TOO_MANY = "YouTube says too many requests came from here; vaultd will wait and retry."
EMPTY = "The subtitles of this video are empty, so there is nothing to study from."


def http_status_error(status: int | None, retry_after: float | None) -> JobError:
    if status == 429:
        return RateLimitedError(TOO_MANY, retry_after=retry_after)
    if status == 403:
        return IpBlockedError(BLOCKED)
    if status is None or status >= 500:
        return NetworkError(f"YouTube had a server problem (HTTP {status}); vaultd will retry.")
    return TranscriptUnavailableError(f"YouTube refused to serve this video (HTTP {status}).")


def map_error(exc: BaseException, recorder: _Recorder | None = None) -> JobError:
    """The daemon error for a library / requests / XML failure, with a plain reason."""
    status = recorder.last_status if recorder else None
    retry_after = recorder.retry_after if recorder else None
    if isinstance(exc, JobError):
        return exc
    if isinstance(exc, yta.IpBlocked):  # the library raises this for HTTP 429 too
        if status == 429:
            return RateLimitedError(TOO_MANY, retry_after=retry_after)
        return IpBlockedError(BLOCKED)
    if isinstance(exc, yta.RequestBlocked):
        return IpBlockedError(BOT_CHECK)
    if isinstance(exc, yta.YouTubeRequestFailed):
        found = re.match(r"(\d{3}) ", exc.reason)
        return http_status_error(int(found.group(1)) if found else status, retry_after)
    if isinstance(exc, yta.VideoUnplayable):
        why = exc.reason or "no reason given"
        return TranscriptUnavailableError(f"YouTube will not play this video here ({why}).")
    for kind, (error, reason) in REASONS.items():
        if isinstance(exc, kind):
            return error(reason)
    if isinstance(exc, yta.CouldNotRetrieveTranscript):
        return TranscriptUnavailableError(f"YouTube gave no transcript ({type(exc).__name__}).")
    if isinstance(exc, ParseError) or type(exc).__module__.startswith("defusedxml"):
        return EmptyTranscriptError(EMPTY)
    if isinstance(exc, requests.Timeout):
        return NetworkError("YouTube did not answer in time; vaultd will retry.")
    if isinstance(exc, requests.exceptions.ProxyError):
        return OfflineError("The configured proxy could not be reached; vaultd will retry.")
    if isinstance(exc, requests.JSONDecodeError):
        return NetworkError("YouTube sent an unreadable answer; vaultd will retry.")
    if isinstance(exc, requests.ConnectionError):
        return OfflineError("Could not reach YouTube (no network?); vaultd will retry.")
    if isinstance(exc, requests.RequestException):
        return NetworkError("Could not reach YouTube (network problem); vaultd will retry.")
    raise exc


# --------------------------------------------------------------------------- tracks


def pick_language(
    languages: list[str],
    manual: list[str],
    generated: list[str],
    *,
    prefer_manual: bool,
    any_language: bool,
) -> tuple[str, bool] | None:
    """(language code, is_generated) of the track to use, or None.

    ``prefer_manual``: a manual track in any preferred language beats a generated one;
    otherwise language order decides (manual first within a language). With
    ``any_language`` a video lacking every preferred language still yields its first
    track (manual first) rather than failing.
    """
    if prefer_manual:
        order = [(code, False) for code in languages] + [(code, True) for code in languages]
    else:
        order = [(code, gen) for code in languages for gen in (False, True)]
    if any_language:
        order += [(code, False) for code in manual] + [(code, True) for code in generated]
    for code, gen in order:
        if code in (generated if gen else manual):
            return code, gen
    return None
