"""YouTube source: one video id -> (Transcript, SourceMeta); one playlist id -> video ids.

Owns the use of youtube-transcript-api 1.2 (watch page -> innertube player API ->
timedtext), the choice of caption track, video metadata, the mapping of every library
and network failure onto :mod:`daemon.errors` with a reason a student understands, and
chapter parsing. HTTP goes through the paced, proxied session of
:mod:`daemon.sources.http`; results are cached by :mod:`daemon.sources.cache` so a
retry or regeneration never refetches. The optional yt-dlp fallback lives in
:mod:`daemon.sources.ytdlp`, playlist expansion in :mod:`daemon.sources.playlist`
(re-exported here as :func:`expand_playlist`).

Metadata comes from the responses the library already fetched: a response hook on
the session (:class:`_Recorder`) keeps the player JSON (videoDetails: title, author,
lengthSeconds, shortDescription, keywords) and the watch page (publish date). This
uses only the public requests API, so it survives changes to the library's private
fetcher. When the player answer has no title, oEmbed supplies title and channel.
"""

from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import requests
import youtube_transcript_api as yta
from youtube_transcript_api.proxies import ProxyConfig

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
from daemon.sources import cache
from daemon.sources.http import (
    PacedSession,
    RequestBudgetExceeded,
    TorControlError,
    drop_shared_sessions,
    proxy_config_from,
    renew_tor_circuit,
    shared_session,
)
from vault_tools.models import Chapter, Segment, SourceMeta, Transcript

log = logging.getLogger(__name__)

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


def _request(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    yt = config["youtube"]
    return {
        "languages": list(yt["languages"]),
        "prefer_manual": bool(yt["prefer_manual"]),
        "any_language": bool(yt.get("any_language", True)),
        "translate_to": config["generate"]["language"] if yt["translate"] else None,
    }


def _choose(tlist: yta.TranscriptList, video_id: str, request: dict[str, Any]) -> yta.Transcript:
    tracks = {(t.language_code, t.is_generated): t for t in tlist}
    manual = [code for code, gen in tracks if not gen]
    generated = [code for code, gen in tracks if gen]
    target = request["translate_to"]
    wanted = list(request["languages"]) + ([target] if target else [])
    picked = pick_language(wanted, manual, generated, prefer_manual=request["prefer_manual"],
                           any_language=request["any_language"])
    if picked is None:
        available = ", ".join(sorted(set(manual + generated))) or "none"
        raise TranscriptUnavailableError(
            f"This video has no subtitles in {', '.join(request['languages'])} "
            f"(it has: {available})."
        )
    track = tracks[picked]
    if target and track.language_code != target:
        if target in {lang.language_code for lang in track.translation_languages}:
            return track.translate(target)
        log.info("%s: %s subtitles cannot be translated to %s; using them as they are",
                 video_id, track.language_code, target)
    return track


# Cues that only describe sound ("[Music]", "(applause)", "♪♪") are not speech.
_NON_SPEECH = re.compile(r"^\s*(?:[\[(][^\])]{1,40}[\])]|[♪♫\s]+)\s*$")


def _to_transcript(snippets: list[Any], language: str, is_generated: bool) -> Transcript:
    segments = [Segment(float(s.start), float(s.duration), " ".join(s.text.split()))
                for s in snippets
                if s.text and s.text.strip() and not _NON_SPEECH.match(s.text)]
    return Transcript(segments=segments, language=language, is_generated=is_generated)


def check_not_empty(transcript: Transcript, min_words: int) -> None:
    words = len(transcript.text.split())
    if words == 0:
        raise EmptyTranscriptError(EMPTY)
    if words < min_words:
        raise EmptyTranscriptError(
            f"The subtitles of this video are almost empty ({words} words), too little "
            "to study from."
        )


# --------------------------------------------------------------------------- fetch


def fetch_youtube(
    video_id: str,
    config: dict[str, dict[str, Any]],
    state_dir: Path,
    *,
    session: requests.Session | None = None,
    stats: dict[str, int] | None = None,
) -> tuple[Transcript, SourceMeta]:
    """Transcript and metadata of one video, from the cache or from YouTube.

    Raises only :mod:`daemon.errors` types. ``session`` (tests, callers sharing one)
    is used as given; otherwise the worker's paced, proxied session is used (kept for
    its next videos, dropped after a block or a network error). A paced session paces
    the video as one unit (:meth:`PacedSession.video`). ``stats["requests"]`` is set to
    the number of requests YouTube answered for this video (0 from the cache).
    """
    if stats is not None:
        stats["requests"] = 0
    if not VIDEO_ID_RE.match(video_id or ""):
        raise InvalidSourceError("This is not a valid YouTube video link.")
    request = _request(config)
    if cached := cache.load(state_dir, video_id, request):
        return cached
    yt = config["youtube"]
    proxy = proxy_config_from(config)
    http = shared_session(config, state_dir, proxy) if session is None else session
    recorder = _Recorder()
    try:
        with http.video() if isinstance(http, PacedSession) else nullcontext():
            transcript, values = _fetch(video_id, config, http, proxy, request, recorder)
    except (IpBlockedError, RateLimitedError, NetworkError) as err:
        if isinstance(err, RequestBudgetExceeded):
            raise  # our own budget: nothing wrong with the connection
        if isinstance(http, PacedSession) and http.gate is not None \
                and not isinstance(err, NetworkError):
            http.gate.blocked(urlsplit(WATCH_URL).hostname or "www.youtube.com",
                              err.retry_after)  # every worker slows down, not just this one
        if session is None:
            drop_shared_sessions()  # the next try starts on new connections
        if yt.get("tor_control_port") and not isinstance(err, NetworkError):
            try:
                renew_tor_circuit(int(yt["tor_control_port"]), yt.get("tor_control_password", ""))
            except TorControlError as tor_exc:
                log.warning("could not get a new Tor circuit: %s", tor_exc)
        raise
    finally:
        if stats is not None:
            stats["requests"] = recorder.responses
    check_not_empty(transcript, int(yt.get("min_transcript_words", 1)))
    meta, extra = split_meta(values)
    meta.language = transcript.language
    cache.store(state_dir, video_id, request, transcript, meta, extra=extra)
    return transcript, meta


def _fetch(
    video_id: str,
    config: dict[str, dict[str, Any]],
    session: requests.Session,
    proxy: ProxyConfig | None,
    request: dict[str, Any],
    recorder: _Recorder,
) -> tuple[Transcript, dict[str, Any]]:
    session.hooks.setdefault("response", []).append(recorder)
    try:
        try:
            api = yta.YouTubeTranscriptApi(proxy_config=proxy, http_client=session)
            fetched = _choose(api.list(video_id), video_id, request).fetch()
        except Exception as exc:
            transcript, values = _fallback(exc, recorder, video_id, config, session, proxy,
                                           request)
        else:
            transcript = _to_transcript(fetched.snippets, fetched.language_code,
                                        fetched.is_generated)
            values = meta_fields(video_id, recorder.player, recorder.watch_html)
        if not values["title"]:  # the player answer had none: one more request
            oembed = fetch_oembed(video_id, session) or {}
            values["title"] = oembed.get("title") or f"YouTube video {video_id}"
            values["channel"] = values["channel"] or oembed.get("author_name") or ""
    finally:
        session.hooks["response"].remove(recorder)
    return transcript, values


def _fallback(
    exc: Exception,
    recorder: _Recorder,
    video_id: str,
    config: dict[str, dict[str, Any]],
    session: requests.Session,
    proxy: ProxyConfig | None,
    request: dict[str, Any],
) -> tuple[Transcript, dict[str, Any]]:
    """yt-dlp when enabled and installed; else (or when it fails too) the mapped error."""
    from daemon.sources import ytdlp  # lazy: ytdlp imports this module

    error = map_error(exc, recorder)
    if (not config["youtube"].get("yt_dlp_fallback") or not ytdlp.available()
            or isinstance(error, RequestBudgetExceeded | InvalidSourceError)):
        raise error from exc
    log.info("%s: %s Trying yt-dlp.", video_id, error.reason)
    try:
        return ytdlp.fetch_captions(video_id, session, proxy, request)
    except Exception as ytdlp_exc:  # the first failure is the one to report
        log.warning("%s: yt-dlp fallback failed too: %s", video_id, ytdlp_exc)
        raise error from exc


# --------------------------------------------------------------------------- playlists


def expand_playlist(
    playlist_id: str,
    config: dict[str, dict[str, Any]],
    state_dir: Path,
    *,
    session: requests.Session | None = None,
) -> list[tuple[str, str]]:
    """``[(video id, title), ...]`` of a playlist; see :mod:`daemon.sources.playlist`."""
    from daemon.sources.playlist import expand  # lazy: playlist imports this module

    return expand(playlist_id, config, state_dir, session=session)
