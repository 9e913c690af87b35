"""YouTube source: one video id -> (Transcript, SourceMeta); one playlist id -> video ids.

Owns the use of youtube-transcript-api 1.2 (watch page -> innertube player API ->
timedtext), the choice of caption track, video metadata, the mapping of every library
and network failure onto :mod:`daemon.errors` with a reason a student understands, and
chapter parsing. HTTP goes through the paced, proxied session of
:mod:`daemon.sources.http`; results are cached by :mod:`daemon.sources.cache` so a
retry or regeneration never refetches. The optional yt-dlp fallback lives in
:mod:`daemon.sources.ytdlp`, playlist expansion in :mod:`daemon.sources.playlist`
(re-exported here as :func:`expand_playlist`), and what all three share (ids, metadata
fields, chapters, track choice, error mapping) in :mod:`daemon.sources.ytcommon`, which
they import instead of this module: no import circle.

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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import youtube_transcript_api as yta
from youtube_transcript_api.proxies import ProxyConfig

from daemon.errors import (
    EmptyTranscriptError,
    InvalidSourceError,
    IpBlockedError,
    NetworkError,
    RateLimitedError,
    TranscriptUnavailableError,
)
from daemon.sources import cache, playlist, ytdlp
from daemon.sources.http import (
    PacedSession,
    RequestBudgetExceeded,
    TorControlError,
    drop_shared_sessions,
    proxy_config_from,
    renew_tor_circuit,
    shared_session,
)
from daemon.sources.ytcommon import (
    BLOCKED,
    BOT_CHECK,
    EMPTY,
    OEMBED_URL,
    REASONS,
    TOO_MANY,
    VIDEO_ID_RE,
    WATCH_URL,
    _Recorder,
    fetch_oembed,
    http_status_error,
    map_error,
    meta_fields,
    meta_from_player,
    parse_chapters,
    pick_language,
    retry_after_of,
    split_meta,
)
from vault_tools.models import Segment, SourceMeta, Transcript

log = logging.getLogger(__name__)

# The shared names live in daemon.sources.ytcommon; callers keep importing them from here.
__all__ = [
    "check_not_empty", "expand_playlist", "fetch_youtube",
    "BLOCKED",
    "BOT_CHECK",
    "EMPTY",
    "OEMBED_URL",
    "REASONS",
    "TOO_MANY",
    "VIDEO_ID_RE",
    "WATCH_URL",
    "fetch_oembed",
    "http_status_error",
    "map_error",
    "meta_fields",
    "meta_from_player",
    "parse_chapters",
    "pick_language",
    "retry_after_of",
    "split_meta",
]



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
    return playlist.expand(playlist_id, config, state_dir, session=session)
