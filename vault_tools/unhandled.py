"""Links in the inbox that vaultd does not make notes from, and why.

The inbox contract leaves every line without a source as the user's text. A user who
pasted a Vimeo link or a YouTube channel page still deserves to learn why no note came:
``vaultd status`` and ``vaultd doctor`` list these links with a reason. A YouTube channel
page is one thing vaultd *can* do something with, by following it: its line gets an
annotation saying how (the ``subscriptions.channels`` entry to add), as a source line
gets its status.

Pure: text in, findings out. Lines in code fences, the frontmatter and HTML comments are
skipped, like :func:`vault_tools.inbox.parse_inbox` skips them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from vault_tools.inbox import MAX_SOURCE_LINE, candidate_lines, strip_annotation
from vault_tools.sources import find_sources

__all__ = ["Unhandled", "unhandled_links"]

_URL = re.compile(r"(?:https?://|www\.|(?<![\w.@/-])(?:m\.)?youtube\.com/)[^\s<>\[\]()\"'`|]+",
                  re.I)
_CHANNEL_URL = re.compile(r"youtube\.com/(?:@|channel/|c/|user/)", re.I)
_CHANNEL_ID = re.compile(r"^UC[0-9A-Za-z_-]{22}$")
_CONFIG = ".vaultd/config.toml"
_HANDLED = "vaultd makes notes from YouTube videos and playlists and subtitle files"


@dataclass(frozen=True)
class Unhandled:
    line: int  # 0-based line index in the inbox
    link: str
    reason: str
    follow: str | None = None  # how to follow it (YouTube channels), else None


def _channel(path: list[str]) -> tuple[bool, str | None]:
    """(is a channel page, its UC… id when the URL holds it)."""
    if not path:
        return False, None
    if path[0] == "channel" and len(path) > 1:
        return True, path[1] if _CHANNEL_ID.match(path[1]) else None
    return path[0].startswith("@") or path[0] in ("c", "user"), None


def classify(link: str) -> tuple[str, str | None]:
    """(reason, follow hint) for a link that is no source."""
    url = link if "://" in link else f"https://{link}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"not a link vaultd can read; {_HANDLED}", None
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    path = [p for p in parts.path.split("/") if p]
    if host in ("youtube.com", "music.youtube.com"):
        is_channel, ident = _channel(path)
        if is_channel:
            how = (f'add "{ident}" to subscriptions.channels in {_CONFIG}' if ident else
                   "add its channel id (UC…, from the channel's About → Share → Copy "
                   f"channel ID) to subscriptions.channels in {_CONFIG}")
            return ("a YouTube channel page, not a video; to get a note of each new "
                    f"video, follow it: {how}"), how
        return f"a YouTube page that is no video or playlist; {_HANDLED}", None
    if host == "youtu.be":  # a source when it names a video: here the id is missing
        return f"a youtu.be link with no video id after the /; {_HANDLED}", None
    return f"{host or 'this site'} is not supported; {_HANDLED}", None


def unhandled_links(text: str, *, channels_only: bool = False) -> list[Unhandled]:
    """Every link of the inbox that is not a source, with the reason (``channels_only``:
    just YouTube channel pages, for the inbox pass). Only lines holding a link are
    visited, so a huge inbox costs a regex pass, not a Python loop per line."""
    finder = _CHANNEL_URL if channels_only else _URL
    hits = [m.start() for m in finder.finditer(text)]
    if not hits:
        return []
    out: list[Unhandled] = []
    for i, line in candidate_lines(text, hits):
        raw = line.rstrip("\r\n")
        if raw.lstrip().startswith("<!--") or len(raw) > MAX_SOURCE_LINE:
            continue
        body, _ = strip_annotation(raw)
        spans = [ref.text for ref in find_sources(body)]
        for m in _URL.finditer(body):
            link = m.group(0).rstrip(".,;:!?")
            if any(link in s or s in link for s in spans):
                continue
            reason, follow = classify(link)
            if follow or not channels_only:
                out.append(Unhandled(i, link, reason, follow))
    return out
