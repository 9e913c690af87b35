"""Following channels and playlists: poll their feeds, append new videos to the inbox.

``Subscriptions`` polls every channel and playlist in ``[subscriptions]`` through
:func:`daemon.sources.feeds.fetch_feed` and appends each new video to the inbox as an
ordinary line the person can read, keep or delete::

    - [ ] Gradient descent, step by step https://www.youtube.com/watch?v=ZZt4nHq0LfE (from …)

The video ids seen per feed live in ``<state>/subscriptions.json`` (written atomically).
The first successful poll of a feed records everything in it as seen without adding it,
so following a channel does not flood the inbox with its back catalogue; only videos
published after the moment the feed was first recorded are added. A video already in the
inbox (any URL form) is not added again, and a line the person deleted stays deleted.

Work is split so the network never runs on the writer thread: :meth:`fetch_all` does the
HTTP (run it anywhere), :meth:`apply` reads and writes the state file and makes one
compare-and-swap inbox edit (run it on the writer thread). :meth:`poll` does both.
Feed problems never raise: transient ones (network, 429, 403) are logged and retried at
the next poll, permanent ones (unknown channel, malformed id) are reported in the
:class:`PollReport` every time and logged once.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from daemon.config import Config
from daemon.errors import (
    ConfigError,
    IpBlockedError,
    JobError,
    NetworkError,
    PermanentError,
    RateLimitedError,
)
from daemon.paths import VaultPaths
from daemon.sources.feeds import FeedEntry, FeedKind, fetch_feed, new_entries
from daemon.sources.http import build_session
from vault_tools.atomic import write_atomic
from vault_tools.inbox import InboxBusy, append_lines, edit_inbox, parse_inbox
from vault_tools.sources import find_sources

__all__ = ["Feed", "Fetched", "PollReport", "Subscriptions", "inbox_line", "safe_title"]

log = logging.getLogger(__name__)

STATE_FILE = "subscriptions.json"
STATE_VERSION = 1
MAX_SEEN = 2000  # per feed; a feed shows 15 entries, so this is years of history
MAX_TITLE = 120


@dataclass(frozen=True)
class Feed:
    """One followed channel or playlist."""

    kind: FeedKind
    ident: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ident}"

    @property
    def label(self) -> str:
        if self.kind == "podcast":  # the feed URL would read as a source on the line
            return f"podcast {urlsplit(self.ident).hostname or 'feed'}"
        return f"{self.kind} {self.ident}"


Fetched = list[tuple[Feed, list[FeedEntry] | JobError]]
"""What :meth:`Subscriptions.fetch_all` returns: per feed, its entries or its error."""


@dataclass
class PollReport:
    """What one poll did. ``errors`` (permanent) and ``transient`` map feed keys to reasons;
    ``failure`` is set when the inbox or the state file could not be written (the new
    videos are then offered again at the next poll)."""

    added: list[str] = field(default_factory=list)  # video ids appended, in order
    errors: dict[str, str] = field(default_factory=dict)
    transient: dict[str, str] = field(default_factory=dict)
    failure: str | None = None


# --------------------------------------------------------------------------- lines

_KEEP = {"\u200c", "\u200d"}  # ZWNJ / ZWJ: needed by Persian text and emoji
_BLANK = {"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"}  # controls, bidi/format, separators
_REPLACE = str.maketrans({"[": "(", "]": ")", "|": "/", "`": "'", "<": "‹", ">": "›",
                          "\\": "/", "—": "–"})
_ESCAPE = re.compile(r"([*_~=$#%^])")


def safe_title(title: str, limit: int = MAX_TITLE) -> str:
    """A feed title made safe for one inbox line.

    One line (every control, format and line/paragraph separator becomes a space), no
    bidi overrides, at most ``limit`` characters, no link/table/code/HTML syntax
    (``[ ] | ` < > \\`` are swapped for look-alikes), inline markup (``* _ ~ = $ # % ^``)
    backslash-escaped so Obsidian shows it as text and makes no tags, no ``—`` that could
    read as a status annotation, and nothing the inbox parser would take for a source.
    A right-to-left title is wrapped in a bidi isolate (U+2068 ... U+2069).
    """
    blanked = "".join(" " if unicodedata.category(ch) in _BLANK and ch not in _KEEP else ch
                      for ch in title)
    text = " ".join(blanked.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    text = _ESCAPE.sub(r"\\\1", text.translate(_REPLACE))
    for _ in range(20):  # defang URLs and file names: every source needs a "."
        refs = find_sources(text)
        if not refs:
            break
        for ref in refs:
            text = text.replace(ref.text, ref.text.replace(".", "\u2024"))
    else:  # pragma: no cover - every source pattern contains a dot
        return "Untitled video"
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
        # First-strong-isolate: a right-to-left title cannot reorder the URL after it.
        text = f"\u2068{text}\u2069"
    return text or "Untitled video"


def inbox_line(entry: FeedEntry, feed: Feed) -> str:
    """The inbox line for a new video (checkbox, title, canonical URL, where from)."""
    return f"- [ ] {safe_title(entry.title)} {entry.url} (from {feed.label})"


def _inbox_keys(text: str) -> set[str]:
    return {ref.key for line in parse_inbox(text) for ref in line.sources}


# --------------------------------------------------------------------------- state


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse_iso(text: Any) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Subscriptions:
    """Polls followed feeds and appends new videos to the inbox (see module docstring)."""

    def __init__(
        self,
        paths: VaultPaths,
        config: Config,
        *,
        session_factory: Callable[[], requests.Session] | None = None,
        base_url: str = "https://www.youtube.com",
    ) -> None:
        self.paths = paths
        self.config = config  # replace on config reload; feeds are read at each poll
        self.base_url = base_url
        self._episodes: dict[str, Any] = {}  # podcast audio URL -> podcast.Episode
        self._session_factory = session_factory or (
            lambda: build_session(self.config.to_dict(), self.paths.state))

    @property
    def state_path(self) -> Path:
        return self.paths.state / STATE_FILE

    def feeds(self) -> list[Feed]:
        """The followed feeds from config, each once, in config order."""
        sub = self.config.section("subscriptions")
        found: dict[str, Feed] = {}
        for kind, idents in (("channel", sub["channels"]), ("playlist", sub["playlists"]),
                             ("podcast", sub.get("podcasts", []))):
            for ident in idents:
                feed = Feed(kind, str(ident).strip())  # type: ignore[arg-type]
                found.setdefault(feed.key, feed)
        return list(found.values())

    # -- network side (any thread) ----------------------------------------------------

    def fetch_all(self) -> Fetched:
        """Fetch every followed feed. Touches neither the vault nor the state file.

        Each result is the feed's entries or the :class:`JobError` it failed with. After a
        429 or 403 the remaining feeds are not asked this round (same host, same block).
        """
        feeds = self.feeds()
        if not feeds:
            return []
        try:
            session = self._session_factory()
        except ConfigError as exc:
            err = NetworkError(f"cannot set up the connection to YouTube: {exc}")
            return [(feed, err) for feed in feeds]
        timeout = float(self.config.get("youtube", "timeout_seconds"))
        results: Fetched = []
        blocked: JobError | None = None
        with session:
            for feed in feeds:
                if blocked is not None:
                    results.append((feed, NetworkError(
                        f"not asked this round: {blocked.reason}")))
                    continue
                try:
                    if feed.kind == "podcast":
                        entries = self._podcast_entries(feed, session, timeout)
                    else:
                        entries = fetch_feed(feed.kind, feed.ident, session=session,
                                             base_url=self.base_url, timeout=timeout)
                except JobError as exc:
                    results.append((feed, exc))
                    if isinstance(exc, RateLimitedError | IpBlockedError):
                        blocked = exc
                except Exception as exc:  # a bug must not stop the other feeds
                    log.exception("unexpected error polling %s", feed.label)
                    results.append((feed, NetworkError(
                        f"unexpected {type(exc).__name__} while polling {feed.label}")))
                else:
                    results.append((feed, entries))
        return results

    def _podcast_entries(self, feed: Feed, session: requests.Session, timeout: float
                         ) -> list[FeedEntry]:
        """A podcast feed's episodes as entries keyed by audio URL; what the feed says
        about each is kept for :meth:`apply` to record when it adds the episode."""
        from daemon.sources import podcast

        entries = []
        for ep in podcast.fetch_feed(feed.ident, session, timeout):
            self._episodes[ep.audio_url] = ep
            title = f"{ep.show}: {ep.title}" if ep.show else ep.title
            entries.append(FeedEntry(ep.audio_url, title, _parse_iso(ep.published_at)
                                     if ep.published_at else None, link=ep.audio_url))
        return entries

    # -- vault side (writer thread) ---------------------------------------------------

    def apply(self, fetched: Fetched, now: datetime | None = None) -> PollReport:
        """Record what was fetched and append new videos to the inbox in one edit."""
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        report = PollReport()
        state = self._load_state()
        followed = {feed.key for feed in self.feeds()}
        for key in [k for k in state if k not in followed]:
            log.info("no longer following %s; forgetting what was seen there", key)
            del state[key]

        candidates: list[tuple[Feed, FeedEntry]] = []
        for feed, result in fetched:
            if feed.key not in followed:
                continue  # unfollowed between fetch and apply
            record = state.setdefault(feed.key, {"since": _iso(now), "polled": False,
                                                 "seen": [], "error": None})
            if isinstance(result, JobError):
                self._note_error(feed, record, result, report)
                continue
            if record.get("error"):
                log.info("%s is reachable again", feed.label)
            record["error"] = None
            fresh = new_entries(result, set(record["seen"]))
            if not record.get("polled"):
                since = _parse_iso(record.get("since")) or now
                keep = [e for e in fresh if e.published is not None and e.published > since]
                _mark_seen(record, (e.video_id for e in fresh if e not in keep))
                log.info("following %s: %d videos already there recorded, %d new",
                         feed.label, len(fresh) - len(keep), len(keep))
                record["polled"] = True
                fresh = keep
            candidates.extend((feed, e) for e in fresh)

        if candidates:
            floor = datetime.min.replace(tzinfo=UTC)
            candidates.sort(key=lambda fe: fe[1].published or floor)  # stable
            try:
                report.added = self._append(candidates)
            except (InboxBusy, OSError) as exc:
                report.failure = f"could not add new videos to the inbox: {exc}"
                log.warning("%s; will try again at the next poll", report.failure)
            else:
                for feed, entry in candidates:
                    _mark_seen(state[feed.key], [entry.video_id])
                    if feed.kind == "podcast" and entry.video_id in report.added:
                        self._remember(entry)
                for video_id in report.added:
                    log.info("new video %s added to the inbox", video_id)
        try:
            self._save_state(state)
        except OSError as exc:
            report.failure = report.failure or f"could not save {self.state_path}: {exc}"
            log.error("%s", report.failure)
        return report

    def poll(self, now: datetime | None = None) -> PollReport:
        """Fetch every feed, then apply the result (both on the calling thread)."""
        return self.apply(self.fetch_all(), now)

    # -- internals --------------------------------------------------------------------

    def _append(self, candidates: list[tuple[Feed, FeedEntry]]) -> list[str]:
        added: list[str] = []

        def transform(text: str) -> str:
            present = _inbox_keys(text)
            lines: list[str] = []
            added.clear()
            for feed, entry in candidates:
                key = (f"podcast:{entry.link}" if feed.kind == "podcast"
                       else f"youtube:{entry.video_id}")
                if key not in present:
                    present.add(key)
                    lines.append(inbox_line(entry, feed))
                    added.append(entry.video_id)
            return append_lines(text, lines)

        edit_inbox(self.paths.inbox, transform, create=True, gate=self.paths.gate)
        return added

    def _remember(self, entry: FeedEntry) -> None:
        from daemon.sources import podcast

        episode = self._episodes.get(entry.link)
        if episode is not None:
            try:
                podcast.remember(self.paths.state, episode)
            except OSError as exc:
                log.warning("could not keep the details of %s: %s", entry.title, exc)

    def _note_error(self, feed: Feed, record: dict[str, Any], exc: JobError,
                    report: PollReport) -> None:
        if isinstance(exc, PermanentError):
            report.errors[feed.key] = exc.reason
            if record.get("error") != exc.reason:
                log.warning("cannot follow %s: %s", feed.label, exc.reason)
            record["error"] = exc.reason
        else:
            report.transient[feed.key] = exc.reason
            log.warning("could not poll %s (will retry at the next poll): %s",
                        feed.label, exc.reason)

    def _load_state(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s (%s); followed feeds start afresh",
                        self.state_path, exc)
            return {}
        feeds = data.get("feeds") if isinstance(data, dict) else None
        if not isinstance(feeds, dict):
            return {}
        state: dict[str, dict[str, Any]] = {}
        for key, record in feeds.items():
            if isinstance(record, dict) and isinstance(record.get("seen"), list):
                state[str(key)] = {
                    "since": record.get("since"),
                    "polled": bool(record.get("polled")),
                    "seen": [str(v) for v in record["seen"]],
                    "error": record.get("error"),
                }
        return state

    def _save_state(self, state: dict[str, dict[str, Any]]) -> None:
        self.paths.state.mkdir(parents=True, exist_ok=True)
        data = {"version": STATE_VERSION, "feeds": state}
        write_atomic(self.state_path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _mark_seen(record: dict[str, Any], video_ids: Iterable[str]) -> None:
    seen: list[str] = record["seen"]
    known = set(seen)
    for video_id in video_ids:
        if video_id not in known:
            known.add(video_id)
            seen.append(video_id)
    if len(seen) > MAX_SEEN:
        del seen[: len(seen) - MAX_SEEN]
