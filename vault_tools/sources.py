"""Recognise sources in a line of text: YouTube videos, playlists, subtitle and media files.

Pure and total: any string in, a list of :class:`SourceRef` out, never an exception.
A YouTube URL whose video id is malformed is still a source (so the user sees why it
failed) but carries ``error``. Other URLs, including YouTube channel or search pages,
are not sources and are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
PLAYLIST_ID = re.compile(r"^[A-Za-z0-9_-]{10,64}$")
SUBTITLE_EXTS = (".srt", ".vtt", ".txt")
MEDIA_EXTS = (".mp3", ".m4a", ".wav", ".ogg", ".opus", ".flac", ".mp4", ".mkv", ".webm", ".mov")
# The link-parsing table: a vault file's extension -> the kind of source it is. Adding a
# file-based source type is one line here (and its module in daemon/sources/).
FILE_KINDS: dict[str, str] = {**{e: "file" for e in SUBTITLE_EXTS},
                              **{e: "media" for e in MEDIA_EXTS}}
_EXT_ALT = "|".join(sorted((e[1:] for e in FILE_KINDS), key=len, reverse=True))

_YT_URL = re.compile(
    r"(?<![\w@.\-/])(?:https?://)?(?:(?:www|m|music)\.)?"
    r"(?:youtube\.com|youtube-nocookie\.com|youtu\.be)"
    r"(?:/[^\s<>\[\]()\"'|`]*)?", re.I)
_WIKILINK = re.compile(rf"!?\[\[([^\]\|#^\n]+?\.(?:{_EXT_ALT}))(?:[#^|][^\]\n]*)?\]\]", re.I)
_MDLINK = re.compile(r"!?\[[^\]\n]*\]\(\s*(<[^>\n]+>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_BARE_FILE = re.compile(rf"(?<![\S])([^\s\[\]()<>\"'|`]+\.(?:{_EXT_ALT}))(?=[\s,;.!?]*$|\s)",
                        re.I)
# A podcast episode (or any audio/video file on the web): an http(s) URL whose path ends
# in a media extension; the query string may follow.
_MEDIA_ALT = "|".join(sorted((e[1:] for e in MEDIA_EXTS), key=len, reverse=True))
_MEDIA_URL = re.compile(rf"https?://[^\s<>\[\]()\"'|`]+?\.(?:{_MEDIA_ALT})"
                        r"(?:\?[^\s<>\[\]()\"'|`]*)?(?=[\s)\]>\"'|`,;!]|\.?$|\.\s)", re.I)
_QUICK = re.compile(rf"youtu|\.(?:{_EXT_ALT})", re.I)


@dataclass(frozen=True)
class SourceRef:
    """A source found in text.

    ``kind`` is ``youtube``, ``playlist``, ``file`` (subtitles), ``media`` (audio or
    video in the vault) or ``podcast`` (an audio URL); ``key`` is the ledger key
    (``youtube:<id>``, ``playlist:<id>``, ``podcast:<url>``,
    ``file:<link target as written>``, ``media:<link target>``; the daemon replaces a
    file key with the resolved vault path and a media key with the file's content
    fingerprint); ``text`` is the exact substring.
    """

    kind: str
    key: str
    text: str
    ident: str
    error: str | None = None
    bare: bool = False  # a bare file path: a source only if the file exists

    @property
    def canonical_url(self) -> str | None:
        if self.kind == "youtube" and not self.error:
            return f"https://www.youtube.com/watch?v={self.ident}"
        if self.kind == "playlist":
            return f"https://www.youtube.com/playlist?list={self.ident}"
        if self.kind == "podcast":
            return self.ident
        return None


def parse_youtube_url(text: str) -> SourceRef | None:
    """Classify one YouTube-looking URL; None when it is not a video or playlist."""
    raw = text.rstrip(".,;:!?")
    url = raw if "://" in raw else f"https://{raw}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    path = [p for p in parts.path.split("/") if p]
    query = parse_qs(parts.query, keep_blank_values=True)
    candidate: str | None = None
    if host.endswith("youtu.be"):
        # ``youtu.be/`` with nothing after is an empty id (a failed line, like
        # ``watch?v=``); bare ``youtu.be`` in prose is no link at all.
        candidate = path[0] if path else ("" if parts.path == "/" else None)
    elif path and path[0] in ("watch", "watch_popup") or parts.path in ("", "/") and "v" in query:
        candidate = (query.get("v") or [None])[0]
        if candidate is None and "list" not in query:
            return None
    elif path and path[0] in ("shorts", "live", "embed", "v", "e") and len(path) > 1:
        candidate = path[1]
    if candidate is None:
        lists = query.get("list")
        if lists and (path[:1] == ["playlist"] or path[:1] == ["watch"]):
            ident = lists[0]
            if PLAYLIST_ID.match(ident):
                return SourceRef("playlist", f"playlist:{ident}", text, ident)
            return SourceRef("playlist", f"invalid:{ident[:40]}", text, ident,
                             error=f"'{ident[:40]}' is not a valid YouTube playlist id")
        return None
    candidate = unquote(candidate)
    if VIDEO_ID.match(candidate):
        return SourceRef("youtube", f"youtube:{candidate}", text, candidate)
    if not candidate:
        return SourceRef("youtube", "invalid:(empty)", text, candidate,
                         error="this YouTube link has no video id")
    shown = candidate[:40] or "(empty)"
    return SourceRef("youtube", f"invalid:{shown}", text, candidate,
                     error=f"'{shown}' is not a valid YouTube video id (expected 11 "
                           "letters, digits, - or _)")


def normalise_file_target(target: str) -> str:
    target = target.strip()
    if target.startswith("<") and target.endswith(">"):  # a markdown link's <target>
        target = target[1:-1]
    target = unquote(target).replace("\\", "/")
    while target.startswith("./"):
        target = target[2:]
    return target


def file_kind(target: str) -> str | None:
    """``file`` / ``media`` for a vault path by its extension, None for other files."""
    dot = target.rfind(".")
    return FILE_KINDS.get(target[dot:].lower()) if dot >= 0 else None


def _file_ref(target: str, text: str, *, bare: bool = False) -> SourceRef:
    kind = file_kind(target) or "file"
    return SourceRef(kind, f"{kind}:{target}", text, target, bare=bare)


def find_sources(line: str) -> list[SourceRef]:
    """All sources in one line, in order of appearance, without duplicates."""
    if not _QUICK.search(line):
        return []
    found: list[tuple[int, SourceRef]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for m in _WIKILINK.finditer(line):
        target = normalise_file_target(m.group(1))
        found.append((m.start(), _file_ref(target, m.group(0))))
        taken.append(m.span())
    for m in _YT_URL.finditer(line):
        if not free(*m.span()):
            continue
        ref = parse_youtube_url(m.group(0))
        if ref:
            found.append((m.start(), ref))
            taken.append(m.span())
    for m in _MEDIA_URL.finditer(line):
        if free(*m.span()):
            url = m.group(0)
            found.append((m.start(), SourceRef("podcast", f"podcast:{url}", url, url)))
            taken.append(m.span())
    for m in _MDLINK.finditer(line):
        target = m.group(1)
        if not free(*m.span(1)) or "://" in target:
            continue
        target = normalise_file_target(target)
        if file_kind(target):
            found.append((m.start(), _file_ref(target, m.group(0))))
            taken.append(m.span())
    for m in _BARE_FILE.finditer(line):
        if not free(*m.span(1)) or "://" in m.group(1) or m.group(1).startswith(("www.", "http")):
            continue
        target = normalise_file_target(m.group(1))
        found.append((m.start(1), _file_ref(target, m.group(1), bare=True)))
        taken.append(m.span(1))
    found.sort(key=lambda item: item[0])
    seen: set[str] = set()
    refs = []
    for _, ref in found:
        if ref.key not in seen:
            seen.add(ref.key)
            refs.append(ref)
    return refs
