"""Followed channels and playlists: fetch their public Atom feeds and pick out new videos.

This module owns the feed client only: one HTTP GET of
``/feeds/videos.xml?channel_id=UC...`` (or ``?playlist_id=...``), a parser that refuses
DTDs and entity declarations (the feed never needs them, and they are how billion-laughs
and external-entity attacks get in), and ``new_entries`` to diff a feed against the ids
already seen. It needs no API key and no extra dependency. The scheduler decides when to
poll and the inbox editor appends the resulting lines; neither lives here.

Failures are typed for the retry logic (see ``daemon.errors``): connection problems,
5xx, unreadable replies -> ``NetworkError``; 429 -> ``RateLimitedError`` with
``retry_after``; 403 -> ``IpBlockedError``; an unknown channel or playlist (404, or an
id that cannot be one) -> ``InvalidSourceError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal
from xml.etree import ElementTree as ET
from xml.parsers import expat

import requests

from daemon.errors import (
    InvalidSourceError,
    IpBlockedError,
    NetworkError,
    RateLimitedError,
)

__all__ = ["FeedEntry", "FeedKind", "fetch_feed", "new_entries", "parse_feed", "feed_url"]

FeedKind = Literal["channel", "playlist", "podcast"]

ATOM = "{http://www.w3.org/2005/Atom}"
YT = "{http://www.youtube.com/xml/schemas/2015}"
MAX_FEED_BYTES = 4 * 1024 * 1024  # a real feed (15 entries) is ~30-60 KB
DEFAULT_TIMEOUT = 20.0

_CHANNEL_RE = re.compile(r"UC[0-9A-Za-z_-]{22}")
_PLAYLIST_RE = re.compile(r"[0-9A-Za-z_-]{10,64}")
_VIDEO_RE = re.compile(r"[0-9A-Za-z_-]{11}")


@dataclass(frozen=True)
class FeedEntry:
    """One video in a feed. ``published`` is timezone-aware, or None when absent."""

    video_id: str
    title: str
    published: datetime | None
    link: str = ""  # podcasts: the episode's audio URL (then also its ``video_id``)

    @property
    def url(self) -> str:
        return self.link or f"https://www.youtube.com/watch?v={self.video_id}"


class UnsafeXmlError(ValueError):
    """The document declares a DTD or entities; we refuse to parse it."""


def feed_url(kind: FeedKind, ident: str, base_url: str = "https://www.youtube.com") -> str:
    """The public feed address for a channel or playlist (validates ``ident``)."""
    key = _check_ident(kind, ident)
    return f"{base_url.rstrip('/')}/feeds/videos.xml?{key}={ident}"


def fetch_feed(
    kind: FeedKind,
    ident: str,
    *,
    session: requests.Session,
    base_url: str = "https://www.youtube.com",
    timeout: float = DEFAULT_TIMEOUT,
) -> list[FeedEntry]:
    """Fetch and parse one feed, newest first as YouTube lists it.

    Raises NetworkError / RateLimitedError / IpBlockedError (transient) or
    InvalidSourceError (permanent: the id is malformed or the feed does not exist).
    """
    url = feed_url(kind, ident, base_url)
    what = f"{kind} {ident}"
    try:
        resp = session.get(url, timeout=timeout, stream=True)
    except requests.Timeout as exc:
        raise NetworkError(f"timed out fetching the feed of {what}") from exc
    except requests.RequestException as exc:
        raise NetworkError(f"could not reach YouTube for the feed of {what}: "
                           f"{type(exc).__name__}") from exc
    with resp:
        code = resp.status_code
        if code == 404 or code == 400:
            raise InvalidSourceError(f"YouTube has no {kind} {ident} (HTTP {code}); "
                                     f"check [subscriptions] in config.toml")
        if code == 429:
            raise RateLimitedError(f"YouTube rate-limited the feed of {what}",
                                   retry_after=_retry_after(resp.headers.get("Retry-After")))
        if code == 403:
            raise IpBlockedError(f"YouTube refused the feed of {what} (HTTP 403)")
        if code != 200:
            raise NetworkError(f"YouTube answered HTTP {code} for the feed of {what}")
        body = _read_capped(resp, what)
    try:
        return parse_feed(body)
    except UnsafeXmlError as exc:
        raise NetworkError(f"refused the feed of {what}: {exc}") from exc
    except ValueError as exc:
        raise NetworkError(f"the feed of {what} was not a readable Atom feed: {exc}") from exc


def new_entries(entries: list[FeedEntry], seen: set[str]) -> list[FeedEntry]:
    """Entries whose video id is not in ``seen``, each id once, oldest first.

    Oldest first so that appended inbox lines read in publication order. ``seen`` is
    not modified; the caller records ids once the lines are safely in the inbox.
    """
    fresh: dict[str, FeedEntry] = {}
    for entry in entries:
        if entry.video_id not in seen and entry.video_id not in fresh:
            fresh[entry.video_id] = entry
    floor = datetime.min.replace(tzinfo=UTC)
    # Feeds list newest first: reversing keeps a sensible order for undated entries,
    # and the stable sort orders the dated ones.
    ordered = list(reversed(fresh.values()))
    return sorted(ordered, key=lambda e: e.published or floor)


def parse_feed(data: bytes) -> list[FeedEntry]:
    """Parse Atom feed bytes into entries. Raises UnsafeXmlError or ValueError."""
    root = _safe_parse(data)
    if root.tag != f"{ATOM}feed":
        raise ValueError(f"root element is {root.tag!r}, not an Atom feed")
    entries: list[FeedEntry] = []
    for el in root.findall(f"{ATOM}entry"):
        video_id = (el.findtext(f"{YT}videoId") or "").strip()
        if not video_id:
            atom_id = (el.findtext(f"{ATOM}id") or "").strip()
            video_id = atom_id.removeprefix("yt:video:") if atom_id.startswith(
                "yt:video:") else ""
        if not _VIDEO_RE.fullmatch(video_id):
            continue  # not a video entry we can act on
        title = " ".join((el.findtext(f"{ATOM}title") or "").split())
        entries.append(FeedEntry(video_id, title, _parse_time(el.findtext(f"{ATOM}published"))))
    return entries


def _safe_parse(data: bytes) -> ET.Element:
    """Build an ElementTree with expat, refusing any DOCTYPE, entity or external ref."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse(*_args: object) -> None:
        raise UnsafeXmlError("it declares a DTD or entities")

    def start(tag: str, attrs: dict[str, str]) -> None:
        builder.start(_qname(tag), {_qname(k): v for k, v in attrs.items()})

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(_qname(tag))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ValueError(str(exc)) from exc
    return builder.close()


def _qname(name: str) -> str:
    return "{" + name if "}" in name else name


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _retry_after(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _read_capped(resp: requests.Response, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in resp.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_FEED_BYTES:
                raise NetworkError(f"the feed of {what} is larger than "
                                   f"{MAX_FEED_BYTES // 1024 // 1024} MB; refused")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise NetworkError(f"connection lost while reading the feed of {what}") from exc
    return b"".join(chunks)


def _check_ident(kind: str, ident: str) -> str:
    if kind == "channel":
        if not _CHANNEL_RE.fullmatch(ident):
            raise InvalidSourceError(f"{ident!r} is not a YouTube channel id (UC + 22 "
                                     f"characters); check [subscriptions] channels")
        return "channel_id"
    if kind == "playlist":
        if not _PLAYLIST_RE.fullmatch(ident):
            raise InvalidSourceError(f"{ident!r} is not a YouTube playlist id; check "
                                     f"[subscriptions] playlists")
        return "playlist_id"
    raise InvalidSourceError(f"unknown feed kind {kind!r} (channel or playlist)")
