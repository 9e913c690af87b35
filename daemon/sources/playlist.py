"""Playlist expansion: a YouTube playlist id -> ``[(video id, title), ...]``.

Owns turning one playlist line of the inbox into the videos it holds, so the
dispatcher can queue one job per video. yt-dlp flat extraction is used when it is
installed (``pip install 'vaultd[ytdlp]'``) and ``youtube.yt_dlp_playlists`` is on,
because it follows YouTube's page changes quickly. Otherwise, and when yt-dlp fails,
the playlist page is read: its embedded ``ytInitialData`` holds the first 100
entries and ``continuationItemRenderer`` tokens, which are followed through the
innertube ``browse`` endpoint. That is best effort: YouTube changes these pages
without notice. Every request goes through the paced, proxied session.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import requests

from daemon.errors import InvalidSourceError, IpBlockedError
from daemon.sources import ytdlp
from daemon.sources.http import build_session, proxy_config_from
from daemon.sources.ytcommon import (
    BLOCKED,
    VIDEO_ID_RE,
    http_status_error,
    map_error,
    retry_after_of,
)

log = logging.getLogger(__name__)

PLAYLIST_ID_RE = re.compile(r"^[A-Za-z0-9_-]{12,64}$")
PLAYLIST_URL = "https://www.youtube.com/playlist"
BROWSE_URL = "https://www.youtube.com/youtubei/v1/browse"
MAX_PAGES = 50  # continuation pages of 100 videos each


def _walk(node: Any, videos: list[tuple[str, str]], tokens: list[str]) -> None:
    if isinstance(node, dict):
        for key in ("playlistVideoRenderer", "playlistPanelVideoRenderer"):
            item = node.get(key)
            if isinstance(item, dict) and item.get("videoId") and item.get("isPlayable", True):
                title = item.get("title", {})
                text = title.get("simpleText") or "".join(
                    r.get("text", "") for r in title.get("runs", []))
                videos.append((item["videoId"], text))
        cont = node.get("continuationItemRenderer")
        if isinstance(cont, dict):
            token = (cont.get("continuationEndpoint", {}).get("continuationCommand", {})
                     .get("token"))
            if token:
                tokens.append(token)
        for value in node.values():
            _walk(value, videos, tokens)
    elif isinstance(node, list):
        for value in node:
            _walk(value, videos, tokens)


def initial_data(html: str) -> dict[str, Any]:
    """The ``ytInitialData`` object embedded in a YouTube page ({} when absent)."""
    found = re.search(r"ytInitialData\"?\]?\s*=\s*", html)
    if not found:
        return {}
    try:
        data, _ = json.JSONDecoder().raw_decode(html, found.end())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def expand(
    playlist_id: str,
    config: dict[str, dict[str, Any]],
    state_dir: Path,
    *,
    session: requests.Session | None = None,
) -> list[tuple[str, str]]:
    """``[(video id, title), ...]`` of a playlist, in playlist order, without repeats.

    yt-dlp flat extraction when installed and ``yt_dlp_playlists`` is on; otherwise
    (or when it fails) best effort from the playlist page's ``ytInitialData`` and its
    innertube ``browse`` continuations (YouTube changes these pages without notice).
    Unavailable (deleted/private) entries are skipped.
    """
    if not PLAYLIST_ID_RE.match(playlist_id or ""):
        raise InvalidSourceError("This is not a valid YouTube playlist link.")
    proxy = proxy_config_from(config)
    if config["youtube"].get("yt_dlp_playlists", True) and ytdlp.available():
        try:
            return _dedupe(ytdlp.playlist(playlist_id, proxy))
        except Exception as exc:  # fall back to the page
            log.warning("yt-dlp could not expand playlist %s: %s", playlist_id, exc)
    own = session is None
    http = build_session(config, state_dir, proxy) if session is None else session
    try:
        videos = _playlist_page(playlist_id, http)
    except requests.RequestException as exc:
        raise map_error(exc) from exc
    finally:
        if own:
            http.close()
    if not videos:
        raise InvalidSourceError("This playlist is empty, private, or does not exist.")
    return videos


def _get_page(playlist_id: str, session: requests.Session) -> str:
    """The playlist page, past the EU consent interstitial (as the library does)."""
    for _ in range(2):
        response = session.get(PLAYLIST_URL, params={"list": playlist_id, "hl": "en"})
        if not response.ok:
            raise http_status_error(response.status_code, retry_after_of(response))
        html = response.text
        if 'class="g-recaptcha"' in html:
            raise IpBlockedError(BLOCKED)
        consent = re.search(r'name="v" value="(.*?)"', html)
        if 'action="https://consent.youtube.com/s"' not in html or not consent:
            return html
        session.cookies.set("CONSENT", "YES+" + consent.group(1), domain=".youtube.com")
    return html


def _playlist_page(playlist_id: str, session: requests.Session) -> list[tuple[str, str]]:
    html = _get_page(playlist_id, session)
    data = initial_data(html)
    if not data:
        raise InvalidSourceError("vaultd could not read this playlist's page; if this keeps "
                                 "happening, update vaultd or install yt-dlp.")
    videos: list[tuple[str, str]] = []
    tokens: list[str] = []
    _walk(data, videos, tokens)
    key = re.search(r'"INNERTUBE_API_KEY":\s*"([\w-]+)"', html)
    version = re.search(r'"INNERTUBE_CLIENT_VERSION":\s*"([\w.-]+)"', html)
    context = {"client": {"clientName": "WEB",
                          "clientVersion": version.group(1) if version else "2.20250101"}}
    pages = 0
    while tokens and key and pages < MAX_PAGES:
        pages += 1
        try:
            reply = session.post(BROWSE_URL, params={"key": key.group(1)},
                                 json={"context": context, "continuation": tokens.pop(0)})
            reply.raise_for_status()
            more = reply.json()
        except requests.RequestException as exc:  # keep what we have
            log.warning("playlist %s: continuation failed (%s); keeping %d videos",
                        playlist_id, exc, len(videos))
            break
        _walk(more, videos, tokens)
    return _dedupe(videos)


def _dedupe(videos: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for vid, title in videos:
        if vid not in seen and VIDEO_ID_RE.match(vid):
            seen.add(vid)
            out.append((vid, title))
    return out
