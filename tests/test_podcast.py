"""Podcasts: feeds parsed, new episodes appended to the inbox by the follower, and an
episode heard end to end by a running daemon.

The podcast host is a loopback HTTP server serving an RSS feed (iTunes duration,
Podcasting 2.0 chapters), the chapters JSON and the episode's audio (espeak-ng speech as
m4a). Transcription goes to the loopback OpenAI-compatible speech server.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_speech import FakeSpeechServer  # noqa: E402
from speech import LECTURE, encode, speak  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.paths import VaultPaths, state_dir_for  # noqa: E402
from daemon.sources import podcast  # noqa: E402
from daemon.sources.feeds import UnsafeXmlError  # noqa: E402
from daemon.writer.feeds.subscriptions import Subscriptions  # noqa: E402
from tests.helpers import start_daemon, vaultd_env, wait_for  # noqa: E402
from tests.loopback import LoopbackServer  # noqa: E402
from tests.test_e2e_stand_ins import linked_note  # noqa: E402
from vault_tools.frontmatter import split  # noqa: E402
from vault_tools.inbox import parse_inbox  # noqa: E402


def rss(origin: str, episodes: list[dict[str, Any]]) -> bytes:
    items = "".join(f"""
    <item>
      <title>{e['title']}</title>
      <link>{origin}/episodes/{e['slug']}</link>
      <guid>{e['slug']}</guid>
      <pubDate>{format_datetime(e['when'])}</pubDate>
      <itunes:duration>{e.get('duration', '00:00:30')}</itunes:duration>
      <enclosure url="{origin}/audio/{e['slug']}.m4a" type="audio/mp4" length="1000"/>
      {f'<podcast:chapters url="{origin}/chapters/{e["slug"]}.json" '
       'type="application/json+chapters"/>' if e.get('chapters') else ''}
    </item>""" for e in episodes)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:podcast="https://podcastindex.org/namespace/1.0">
  <channel>
    <title>Plant Biology Weekly</title>
    <link>{origin}/</link>
    {items}
  </channel>
</rss>""".encode()


class PodcastHost(LoopbackServer):
    """Serves ``files`` (path -> bytes) and counts requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                host.hits[self.path] = host.hits.get(self.path, 0) + 1
                body = host.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        super().__init__(Handler)


NOW = datetime.now(UTC).replace(microsecond=0)
OLD = {"title": "Episode 1: Roots", "slug": "ep1", "when": NOW - timedelta(days=7)}
NEW = {"title": "Episode 2: Photosynthesis", "slug": "ep2", "when": NOW - timedelta(hours=1),
       "duration": "0:31", "chapters": True}
CHAPTERS = {"version": "1.2.0", "chapters": [
    {"startTime": 0, "title": "Welcome"}, {"startTime": 12, "title": "Light and leaves"}]}


def test_rss_and_atom_feeds_give_episodes_with_their_details() -> None:
    episodes = podcast.parse_feed(rss("https://pod.example", [NEW, OLD]))
    first = episodes[0]
    assert [e.title for e in episodes] == ["Episode 2: Photosynthesis", "Episode 1: Roots"]
    assert first.audio_url == "https://pod.example/audio/ep2.m4a"
    assert first.show == "Plant Biology Weekly" and first.duration == 31.0
    assert first.published == NEW["when"].date().isoformat()
    assert first.chapters_url == "https://pod.example/chapters/ep2.json"
    assert episodes[1].chapters_url == ""
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>Talks</title>
      <entry><title>On soil</title><published>2026-01-02T10:00:00Z</published>
        <link rel="alternate" href="https://t.example/soil"/>
        <link rel="enclosure" type="audio/mpeg" href="https://t.example/soil.mp3"/></entry>
      <entry><title>No audio</title><link href="https://t.example/text"/></entry></feed>"""
    (soil,) = podcast.parse_feed(atom)
    assert (soil.show, soil.title, soil.audio_url, soil.link, soil.published) == (
        "Talks", "On soil", "https://t.example/soil.mp3", "https://t.example/soil",
        "2026-01-02")
    with pytest.raises(UnsafeXmlError):
        podcast.parse_feed(b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><rss/>')
    assert [c.title for c in podcast.parse_chapters(json.dumps(CHAPTERS).encode())] == [
        "Welcome", "Light and leaves"]
    assert podcast.parse_chapters(b"not json") == []


def test_following_a_podcast_adds_only_new_episodes(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "inbox.md").write_text("# Inbox\n")
    with PodcastHost() as host:
        feed = f"{host.url}/feed.xml"
        host.files["/feed.xml"] = rss(host.url, [OLD])
        config = Config.defaults()
        config.values["subscriptions"]["podcasts"] = [feed]
        config.values["youtube"]["min_request_interval_seconds"] = 0.0
        subs = Subscriptions(VaultPaths.from_config(vault, config), config)
        first = subs.poll(now=NOW - timedelta(days=1))
        assert first.added == [] and first.errors == {}  # the back catalogue is not added
        host.files["/feed.xml"] = rss(host.url, [NEW, OLD])
        second = subs.poll(now=NOW)
    assert second.added == [f"{host.url}/audio/ep2.m4a"]
    lines = (vault / "inbox.md").read_text().splitlines()
    assert lines[-1] == (f"- [ ] Plant Biology Weekly: Episode 2: Photosynthesis "
                         f"{host.url}/audio/ep2.m4a (from podcast 127.0.0.1)")
    (line,) = parse_inbox("\n".join(lines))
    assert [s.key for s in line.sources] == [f"podcast:{host.url}/audio/ep2.m4a"]
    kept = podcast.recall(subs.paths.state, f"{host.url}/audio/ep2.m4a")
    assert kept.title == "Episode 2: Photosynthesis" and kept.duration == 31.0


def test_a_new_episode_becomes_a_note_with_the_feeds_details(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A running daemon follows the feed, adds the new episode, downloads and hears it,
    and writes a note whose frontmatter and chapters come from the feed."""
    wav = speak(LECTURE, tmp_path / "ep2.wav", silence_before=3.0)
    audio = encode(wav, tmp_path / "ep2.m4a").read_bytes()
    lines = [f"{sentence}." for sentence in LECTURE.split(". ")]
    with PodcastHost() as host, FakeSpeechServer(lines) as speech:
        host.files.update({"/feed.xml": rss(host.url, [NEW, OLD]),
                           "/audio/ep2.m4a": audio,
                           "/chapters/ep2.json": json.dumps(CHAPTERS).encode()})
        vault = tmp_path / "vault"
        (vault / ".vaultd").mkdir(parents=True)
        (vault / "inbox.md").write_text("# Inbox\n")
        (vault / ".vaultd" / "config.toml").write_text(f"""\
[daemon]
debounce_seconds = 0.1
[generate]
backend = "offline"
[pdf]
enabled = false
[youtube]
min_request_interval_seconds = 0.0
[subscriptions]
podcasts = ["{host.url}/feed.xml"]
[transcribe]
engine = "openai"
model = "whisper-1"
base_url = "{speech.base_url}"
""")
        env = vaultd_env(tmp_path / "state")
        # The feed was followed a day ago and episode 1 was seen then.
        monkeypatch.setenv("VAULTD_STATE_DIR", env["VAULTD_STATE_DIR"])
        state = state_dir_for(vault)
        state.mkdir(parents=True)
        (state / "subscriptions.json").write_text(json.dumps({"version": 1, "feeds": {
            f"podcast:{host.url}/feed.xml": {
                "since": (NOW - timedelta(days=1)).isoformat(), "polled": True,
                "seen": [f"{host.url}/audio/ep1.m4a"], "error": None}}}))
        proc = start_daemon(vault, env, log=tmp_path / "daemon.log")
        try:
            wait_for(lambda: "✅" in (vault / "inbox.md").read_text(), timeout=120,
                     what="the episode's note")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        audio_hits = host.hits.get("/audio/ep2.m4a", 0)
    assert proc.returncode == 0
    assert host.hits.get("/audio/ep1.m4a") is None  # the old episode was not added
    assert audio_hits == 1 and len(speech.requests) == 1
    (line,) = parse_inbox((vault / "inbox.md").read_text())
    meta, body = split(linked_note(vault, line.annotation).read_text())
    assert meta["title"] == "Episode 2: Photosynthesis"
    assert meta["channel"] == "Plant Biology Weekly"
    assert meta["published"] == NEW["when"].date().isoformat()
    assert meta["duration"] == 31
    assert meta["source"] == f"{host.url}/audio/ep2.m4a"
    assert meta["chapters"] == ["0:00 Welcome", "0:12 Light and leaves"]
    assert "Light and leaves" in body  # a chapter of the feed heads a section
    assert not list((state / "downloads").glob("*"))  # the download was removed
