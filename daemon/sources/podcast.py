"""Podcasts: RSS/Atom feeds, episodes as sources (``podcast:<audio URL>`` jobs).

An episode's audio URL in the inbox is a source; :mod:`daemon.follow` appends new
episodes of the feeds in ``[subscriptions] podcasts`` as such lines and records what
the feed said about each (show, title, date, duration, Podcasting 2.0 chapters URL) in
``<state>/podcasts/<hash>.json``, where :func:`transcribe_episode` (in the transcription
pool) finds it. The audio is downloaded to ``<state>/downloads/`` (capped in size),
transcribed, and deleted; the metadata is stored with the transcript.

Feeds are parsed with the same DTD-refusing parser as YouTube feeds
(:func:`daemon.subscriptions._safe_parse`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from daemon.errors import (
    JobError,
    NetworkError,
    OfflineError,
    PermanentError,
    RateLimitedError,
    SourceNotFoundError,
)
from daemon.sources.transcribe import EngineSettings, transcribe_file
from vault_tools.atomic import write_atomic
from vault_tools.models import Chapter, SourceMeta

log = logging.getLogger("vaultd.podcast")

KIND = "podcast"
ATOM = "{http://www.w3.org/2005/Atom}"
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
PODCAST = "{https://podcastindex.org/namespace/1.0}"
MAX_AUDIO_BYTES = 2 * 1024 ** 3
MAX_CHAPTERS_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Episode:
    """One feed item with audio. ``published`` is an ISO date (YYYY-MM-DD) or None."""

    audio_url: str
    title: str
    show: str = ""
    link: str = ""
    published: str | None = None
    published_at: str | None = None  # full ISO timestamp, for ordering
    duration: float | None = None
    chapters_url: str = ""
    description: str = ""

    @property
    def key(self) -> str:
        return f"{KIND}:{self.audio_url}"


def _duration(text: str | None) -> float | None:
    """``3600``, ``59:30`` or ``1:02:03`` -> seconds."""
    if not text or not re.fullmatch(r"\d+(?::\d{1,2}){0,2}(?:\.\d+)?", text.strip()):
        return None
    total = 0.0
    for part in text.strip().split(":"):
        total = total * 60 + float(part)
    return total


def _when(text: str | None) -> tuple[str | None, str | None]:
    from datetime import UTC, datetime

    if not text:
        return None, None
    text = text.strip()
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None, None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.date().isoformat(), moment.astimezone(UTC).isoformat(timespec="seconds")


def _text(el: Any, tag: str) -> str:
    return " ".join((el.findtext(tag) or "").split())


def parse_feed(data: bytes) -> list[Episode]:
    """Episodes with audio of an RSS 2.0 or Atom podcast feed, as listed.

    Raises ``ValueError`` (not a feed) or ``UnsafeXmlError`` (a DTD or entities).
    """
    from daemon.sources.feeds import _safe_parse

    root = _safe_parse(data)
    episodes: list[Episode] = []
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise ValueError("an RSS feed without a channel")
        show = _text(channel, "title")
        for item in channel.findall("item"):
            enclosure = item.find("enclosure")
            url = (enclosure.get("url") if enclosure is not None else "") or ""
            if not url.startswith(("http://", "https://")):
                continue
            chapters = item.find(f"{PODCAST}chapters")
            date, moment = _when(item.findtext("pubDate"))
            episodes.append(Episode(
                audio_url=url.strip(), title=_text(item, "title") or "Untitled episode",
                show=show, link=_text(item, "link"), published=date, published_at=moment,
                duration=_duration(item.findtext(f"{ITUNES}duration")),
                chapters_url=(chapters.get("url") or "") if chapters is not None else "",
                description=_text(item, "description")[:2000]))
    elif root.tag == f"{ATOM}feed":
        show = _text(root, f"{ATOM}title")
        for entry in root.findall(f"{ATOM}entry"):
            links = entry.findall(f"{ATOM}link")
            audio = next((li.get("href") or "" for li in links
                          if li.get("rel") == "enclosure"), "")
            if not audio.startswith(("http://", "https://")):
                continue
            page = next((li.get("href") or "" for li in links
                         if li.get("rel") in (None, "alternate")), "")
            date, moment = _when(entry.findtext(f"{ATOM}published")
                                 or entry.findtext(f"{ATOM}updated"))
            episodes.append(Episode(audio_url=audio.strip(), title=_text(entry, f"{ATOM}title")
                                    or "Untitled episode", show=show, link=page,
                                    published=date, published_at=moment))
    else:
        raise ValueError(f"root element is {root.tag!r}, not an RSS or Atom feed")
    return episodes


def parse_chapters(data: bytes) -> list[Chapter]:
    """Podcasting 2.0 JSON chapters (``{"chapters": [{"startTime": 0, "title": ...}]}``)."""
    try:
        raw = json.loads(data)
    except ValueError:
        return []
    items = raw.get("chapters") if isinstance(raw, dict) else None
    chapters = []
    for c in items if isinstance(items, list) else []:
        if isinstance(c, dict) and isinstance(c.get("startTime"), int | float) and \
                c.get("title") and c.get("toc", True) is not False:
            chapters.append(Chapter(float(c["startTime"]), " ".join(str(c["title"]).split())))
    return sorted(chapters, key=lambda c: c.start)


def fetch_feed(url: str, session: requests.Session, timeout: float) -> list[Episode]:
    """Fetch and parse one podcast feed (capped like YouTube feeds)."""
    from daemon.sources.feeds import UnsafeXmlError, _read_capped

    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"{url!r} is not a feed URL (http:// or https://); check "
                             "subscriptions podcasts")
    with _get(url, session, timeout, "podcast feed") as resp:
        body = _read_capped(resp, f"podcast {url}")
    try:
        return parse_feed(body)
    except UnsafeXmlError as exc:
        raise NetworkError(f"refused the podcast feed {url}: {exc}") from None
    except ValueError as exc:
        raise PermanentError(f"{url} is not an RSS or Atom feed ({str(exc)[:80]})") from None


# --------------------------------------------------------------------------- episode store


def _episode_path(state_dir: Path, audio_url: str) -> Path:
    digest = hashlib.sha256(audio_url.encode()).hexdigest()[:32]
    return Path(state_dir) / "podcasts" / f"{digest}.json"


def remember(state_dir: Path, episode: Episode) -> None:
    """Keep what the feed said about an episode for when it is transcribed."""
    path = _episode_path(state_dir, episode.audio_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(episode), ensure_ascii=False))


def recall(state_dir: Path, audio_url: str) -> Episode:
    """The feed's record of an episode, or one made from its URL (pasted by hand)."""
    try:
        data = json.loads(_episode_path(state_dir, audio_url).read_text(encoding="utf-8"))
        known = Episode.__dataclass_fields__
        return Episode(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        name = PurePosixPath(unquote(urlsplit(audio_url).path)).stem
        title = " ".join(re.sub(r"[_\-.]+", " ", name).split()) or "Podcast episode"
        return Episode(audio_url=audio_url, title=title, show=urlsplit(audio_url).hostname
                       or "")


# --------------------------------------------------------------------------- download


def _get(url: str, session: requests.Session, timeout: float, what: str
         ) -> requests.Response:
    try:
        resp = session.get(url, timeout=timeout, stream=True)
    except requests.Timeout:
        raise NetworkError(f"timed out downloading the {what}; vaultd will retry") from None
    except requests.RequestException as exc:
        raise OfflineError(f"could not reach {urlsplit(url).hostname} for the {what} "
                           f"({type(exc).__name__}); vaultd will retry") from None
    if resp.status_code == 429:
        raise RateLimitedError(f"the podcast host says too many requests for the {what}")
    if resp.status_code in (404, 410):
        raise SourceNotFoundError(f"the {what} is gone (HTTP {resp.status_code})")
    if resp.status_code >= 500:
        raise NetworkError(f"the podcast host failed (HTTP {resp.status_code}); vaultd will "
                           "retry")
    if resp.status_code != 200:
        raise PermanentError(f"the podcast host refused the {what} (HTTP {resp.status_code})")
    return resp


def download(url: str, folder: Path, session: requests.Session, timeout: float) -> Path:
    """Stream the episode's audio to ``folder`` (at most ``MAX_AUDIO_BYTES``)."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = PurePosixPath(urlsplit(url).path).suffix[:8] or ".audio"
    path = folder / (hashlib.sha256(url.encode()).hexdigest()[:24] + suffix)
    part = path.with_name(path.name + ".part")
    with _get(url, session, timeout, "episode audio") as resp, open(part, "wb") as out:
        size = 0
        try:
            for chunk in resp.iter_content(1024 * 1024):
                size += len(chunk)
                if size > MAX_AUDIO_BYTES:
                    raise PermanentError(f"the episode is over {MAX_AUDIO_BYTES // 1024 ** 3} "
                                         "GB; not downloaded")
                out.write(chunk)
        except requests.RequestException:
            raise NetworkError("the connection broke while downloading the episode; "
                               "vaultd will retry") from None
    part.replace(path)
    return path


def transcribe_episode(audio_url: str, config: dict[str, dict[str, Any]], state_dir: Path,
                       key: str, settings: EngineSettings) -> None:
    """Download an episode, read its chapters, transcribe it into the speech cache."""
    episode = recall(state_dir, audio_url)
    timeout = float(config["youtube"]["timeout_seconds"])
    with requests.Session() as session:
        chapters: list[Chapter] = []
        if episode.chapters_url.startswith(("http://", "https://")):
            try:
                with _get(episode.chapters_url, session, timeout, "chapters") as resp:
                    chapters = parse_chapters(resp.raw.read(MAX_CHAPTERS_BYTES,
                                                            decode_content=True))
            except JobError as exc:  # chapters are a nicety: the episode goes on
                log.warning("%s: no chapters: %s", episode.title, exc.reason)
        path = download(audio_url, Path(state_dir) / "downloads", session, timeout)
    meta = SourceMeta(key=f"{KIND}:{audio_url}", kind=KIND, title=episode.title,
                      url=audio_url, channel=episode.show, duration=episode.duration,
                      published=episode.published, description=episode.description,
                      chapters=chapters)
    try:
        transcript = transcribe_file(path, state_dir, key, settings, meta=asdict(meta))
    except JobError as exc:
        if not exc.transient:  # kept for a retry, dropped when the episode failed for good
            path.unlink(missing_ok=True)
        raise
    path.unlink(missing_ok=True)
    log.info("%s: transcribed %d segments", episode.title, len(transcript.segments))
