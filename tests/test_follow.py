"""Following channels and playlists: feeds served by a loopback http.server, real inbox edits."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import load_config
from daemon.paths import VaultPaths
from daemon.sources.feeds import FeedEntry
from daemon.writer.feeds.subscriptions import (
    Feed,
    PollReport,
    Subscriptions,
    inbox_line,
    safe_title,
)
from tests.helpers import closed_port
from vault_tools.inbox import Status, annotate, parse_inbox

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
CHANNEL = "UCx9fKq3bLr7mN2pT5vW8yZa"
PLAYLIST = "PLr4nD0mL1stOfTalks7"
MISSING = "UC" + "0" * 22
OTHER = "UCotherChannel0000000000"
CHANNEL_IDS = ["Qm3vR8tXw2A", "b7Kp_1sZ-9c", "ZZt4nHq0LfE"]
NEW_ID = "NeWvid3o_01"
T_FOLLOW = datetime(2024, 5, 10, tzinfo=UTC)  # between the fixture's publish dates
T_LATER = datetime(2024, 6, 1, tzinfo=UTC)


class FeedServer:
    """Serves the fixture feeds; a test overrides one feed with ``serve(ident, ...)``."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requested: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                ident = (query.get("channel_id") or query.get("playlist_id") or [""])[0]
                owner.requested.append(ident)
                kind = "channel" if "channel_id" in query else "playlist"
                fixture = FEEDS / f"{kind}_{ident}.xml"
                if ident in owner.routes:
                    code, body = owner.routes[ident]
                elif fixture.is_file():
                    code, body = 200, fixture.read_bytes()
                else:
                    code, body = 404, b""
                self.send_response(code)
                self.send_header("Content-Type", "text/xml; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, ident: str, body: bytes, code: int = 200) -> None:
        self.routes[ident] = (code, body)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    fs = FeedServer()
    thread = threading.Thread(target=fs.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fs
    finally:
        fs.server.shutdown()
        fs.server.server_close()


def entry_xml(video_id: str, title: str, published: datetime) -> str:
    return (f"<entry><id>yt:video:{video_id}</id><yt:videoId>{video_id}</yt:videoId>"
            f"<title>{escape(title)}</title><published>{published.isoformat()}</published>"
            f"</entry>\n")


def with_entries(fixture: str, *entries: str) -> bytes:
    """A fixture feed with ``entries`` put on top (newest first, as YouTube lists them)."""
    text = (FEEDS / fixture).read_text(encoding="utf-8")
    head, sep, tail = text.partition(" <entry>")
    return (head + "".join(entries) + sep + tail).encode("utf-8")


def session_factory() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # a proxy in the environment must not catch loopback
    return s


def follow(vault: Path, base_url: str, channels: list[str] | None = None,
           playlists: list[str] | None = None) -> Subscriptions:
    """Write the vault's config.toml and build Subscriptions from it."""
    (vault / ".vaultd").mkdir(parents=True, exist_ok=True)
    (vault / ".vaultd" / "config.toml").write_text(
        "[subscriptions]\n"
        f"channels = {json.dumps(channels if channels is not None else [CHANNEL])}\n"
        f"playlists = {json.dumps(playlists or [])}\n", encoding="utf-8")
    config = load_config(vault)
    return Subscriptions(VaultPaths.from_config(vault, config), config,
                         session_factory=session_factory, base_url=base_url)


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "vault"
    path.mkdir()
    return path


def inbox_keys(vault: Path) -> list[str]:
    text = (vault / "inbox.md").read_text(encoding="utf-8")
    return [ref.key for line in parse_inbox(text) for ref in line.sources]


def seen(subs: Subscriptions, key: str = f"channel:{CHANNEL}") -> list[str]:
    return json.loads(subs.state_path.read_text(encoding="utf-8"))["feeds"][key]["seen"]


# --------------------------------------------------------------------------- first poll


def test_first_poll_records_the_feed_without_adding(vault: Path, feeds: FeedServer) -> None:
    subs = follow(vault, feeds.url)
    report = subs.poll()
    assert report == PollReport()
    assert not (vault / "inbox.md").exists()
    assert sorted(seen(subs)) == sorted(CHANNEL_IDS)
    assert feeds.requested == [CHANNEL]


def test_second_poll_appends_exactly_the_new_video(vault: Path, feeds: FeedServer) -> None:
    (vault / "inbox.md").write_bytes(b"# Inbox\r\nmy own text")
    subs = follow(vault, feeds.url)
    subs.poll()
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml", entry_xml(
        NEW_ID, "Linear maps & matrices", datetime(2024, 5, 21, tzinfo=UTC))))
    report = subs.poll()
    assert report.added == [NEW_ID]
    raw = (vault / "inbox.md").read_bytes()
    assert raw.startswith(b"# Inbox\r\nmy own text\r\n")  # user text kept, line endings too
    text = raw.decode("utf-8")
    lines = parse_inbox(text)
    assert [ref.key for line in lines for ref in line.sources] == [f"youtube:{NEW_ID}"]
    assert lines[0].body == (f"- [ ] Linear maps & matrices https://www.youtube.com/watch?v="
                             f"{NEW_ID} (from channel {CHANNEL})")
    assert subs.poll().added == []  # a third poll adds nothing
    assert inbox_keys(vault) == [f"youtube:{NEW_ID}"]


def test_videos_published_after_following_are_added_on_first_success(
    vault: Path, feeds: FeedServer
) -> None:
    subs = follow(vault, feeds.url)
    feeds.serve(CHANNEL, b"oops", code=500)
    report = subs.poll(now=T_FOLLOW)  # followed on May 10th, but YouTube is down
    assert set(report.transient) == {f"channel:{CHANNEL}"} and report.added == []
    del feeds.routes[CHANNEL]
    report = subs.poll(now=T_LATER)
    assert report.added == ["Qm3vR8tXw2A"]  # published May 14th; the others are older
    assert inbox_keys(vault) == ["youtube:Qm3vR8tXw2A"]


# --------------------------------------------------------------------------- dedupe


def test_video_already_in_inbox_in_another_form_is_not_added(
    vault: Path, feeds: FeedServer
) -> None:
    (vault / "inbox.md").write_text(f"watch later: https://youtu.be/{NEW_ID}?t=42\n",
                                    encoding="utf-8")
    subs = follow(vault, feeds.url)
    subs.poll()
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml",
                                      entry_xml(NEW_ID, "Dup", T_LATER)))
    before = (vault / "inbox.md").read_bytes()
    assert subs.poll().added == []
    assert (vault / "inbox.md").read_bytes() == before
    assert NEW_ID in seen(subs)


def test_deleted_line_is_not_added_again(vault: Path, feeds: FeedServer) -> None:
    subs = follow(vault, feeds.url)
    subs.poll()
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml",
                                      entry_xml(NEW_ID, "Not for me", T_LATER)))
    assert subs.poll().added == [NEW_ID]
    (vault / "inbox.md").write_text("I deleted it\n", encoding="utf-8")
    assert subs.poll().added == []
    assert (vault / "inbox.md").read_text(encoding="utf-8") == "I deleted it\n"


def test_same_video_in_channel_and_playlist_is_one_line(vault: Path, feeds: FeedServer) -> None:
    subs = follow(vault, feeds.url, playlists=[PLAYLIST])
    subs.poll()
    new = entry_xml(NEW_ID, "Both", T_LATER)
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml", new))
    feeds.serve(PLAYLIST, with_entries(f"playlist_{PLAYLIST}.xml", new))
    assert subs.poll().added == [NEW_ID]
    assert inbox_keys(vault) == [f"youtube:{NEW_ID}"]
    assert NEW_ID in seen(subs, f"playlist:{PLAYLIST}")


# --------------------------------------------------------------------------- errors


def test_missing_feed_is_reported_and_others_still_work(
    vault: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="daemon.writer.feeds.subscriptions")
    subs = follow(vault, feeds.url, channels=[MISSING, CHANNEL])
    report = subs.poll()
    assert list(report.errors) == [f"channel:{MISSING}"]
    assert "404" in report.errors[f"channel:{MISSING}"]
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml",
                                      entry_xml(NEW_ID, "Still here", T_LATER)))
    report = subs.poll()
    assert report.added == [NEW_ID]
    assert list(report.errors) == [f"channel:{MISSING}"]  # reported every poll
    follow(vault, feeds.url, channels=[MISSING, CHANNEL]).poll()  # and after a restart
    warnings = [r for r in caplog.records if MISSING in r.getMessage()]
    assert len(warnings) == 1  # logged once


def test_rate_limit_stops_the_round_and_nothing_raises(vault: Path, feeds: FeedServer) -> None:
    subs = follow(vault, feeds.url, channels=[OTHER, CHANNEL])
    feeds.serve(OTHER, b"slow down", code=429)
    report = subs.poll()
    assert set(report.transient) == {f"channel:{OTHER}", f"channel:{CHANNEL}"}
    assert report.errors == {} and report.added == []
    assert feeds.requested == [OTHER]  # the second feed was not asked


def test_unreachable_youtube_is_transient(vault: Path) -> None:
    subs = follow(vault, f"http://127.0.0.1:{closed_port()}", playlists=[PLAYLIST])
    report = subs.poll()
    assert set(report.transient) == {f"channel:{CHANNEL}", f"playlist:{PLAYLIST}"}
    assert report.errors == {} and report.added == []
    assert not (vault / "inbox.md").exists()


def test_inbox_failure_offers_the_video_again(vault: Path, feeds: FeedServer) -> None:
    subs = follow(vault, feeds.url)
    subs.poll()
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml",
                                      entry_xml(NEW_ID, "Retry me", T_LATER)))
    (vault / "inbox.md").mkdir()  # unreadable as a file: the edit fails
    report = subs.poll()
    assert report.added == [] and report.failure and "inbox" in report.failure
    assert NEW_ID not in seen(subs)
    (vault / "inbox.md").rmdir()
    assert subs.poll().added == [NEW_ID]


# --------------------------------------------------------------------------- state


def test_state_survives_a_new_instance(vault: Path, feeds: FeedServer) -> None:
    follow(vault, feeds.url).poll()
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml",
                                      entry_xml(NEW_ID, "After restart", T_LATER)))
    again = follow(vault, feeds.url)
    assert again.poll().added == [NEW_ID]
    assert follow(vault, feeds.url).poll().added == []


def test_fetch_all_touches_neither_vault_nor_state(vault: Path, feeds: FeedServer) -> None:
    subs = follow(vault, feeds.url, channels=[CHANNEL, MISSING])
    fetched = subs.fetch_all()
    assert [feed.key for feed, _ in fetched] == [f"channel:{CHANNEL}", f"channel:{MISSING}"]
    entries = fetched[0][1]
    assert isinstance(entries, list) and [e.video_id for e in entries] == CHANNEL_IDS
    assert not subs.state_path.exists() and not (vault / "inbox.md").exists()
    assert subs.apply(fetched).errors.keys() == {f"channel:{MISSING}"}
    assert subs.state_path.exists()


def test_unfollow_forgets_and_refollow_does_not_flood(vault: Path, feeds: FeedServer) -> None:
    follow(vault, feeds.url).poll(now=T_FOLLOW)
    subs = follow(vault, feeds.url, channels=[])
    assert subs.poll() == PollReport()
    state = json.loads(subs.state_path.read_text(encoding="utf-8"))
    assert state["feeds"] == {}
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml",
                                      entry_xml(NEW_ID, "While unfollowed", T_LATER)))
    again = follow(vault, feeds.url)
    assert again.poll(now=datetime(2024, 7, 1, tzinfo=UTC)).added == []
    assert NEW_ID in seen(again)


def test_corrupt_state_file_starts_afresh_without_flooding(
    vault: Path, feeds: FeedServer
) -> None:
    subs = follow(vault, feeds.url)
    subs.state_path.parent.mkdir(parents=True)
    subs.state_path.write_text("{not json", encoding="utf-8")
    assert subs.poll().added == []
    assert sorted(seen(subs)) == sorted(CHANNEL_IDS)


# --------------------------------------------------------------------------- titles

HOSTILE = [
    "Close ]] the link [[Secret]] and | table",
    "Two\nlines\r\nand\u2028a separator\u0085and\x0bmore",
    "<script>alert('x')</script> <img src=x onerror=alert(1)>",
    "x" * 300,
    "\u202eevil.exe\u202c and \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "`code` **bold** #shorts %%hidden%% ==mark== $x$ ~~s~~ ^block",
    "Also see https://youtu.be/AAAAAAAAAAA and notes.srt",
    "Fake status — ✅ [[Study Notes/Other|Other]]",
    "",
]


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_title_gives_one_safe_line(title: str) -> None:
    line = inbox_line(FeedEntry(NEW_ID, title, T_LATER), Feed("channel", CHANNEL))
    assert_safe_line(line, title)


def test_hostile_titles_through_the_feed(vault: Path, feeds: FeedServer) -> None:
    subs = follow(vault, feeds.url)
    subs.poll()
    xml_safe = [t for t in HOSTILE if "\x0b" not in t]  # XML 1.0 cannot carry \x0b
    ids = [f"hostile{i:04d}" for i in range(len(xml_safe))]
    feeds.serve(CHANNEL, with_entries(f"channel_{CHANNEL}.xml", *(
        entry_xml(vid, t, T_LATER) for vid, t in zip(ids, xml_safe, strict=True))))
    assert sorted(subs.poll().added) == sorted(ids)
    text = (vault / "inbox.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(ids)
    assert sorted(inbox_keys(vault)) == sorted(f"youtube:{vid}" for vid in ids)
    for line in text.splitlines():
        assert_safe_line(line)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_title_gives_one_safe_line(title: str) -> None:
    assert_safe_line(inbox_line(FeedEntry(NEW_ID, title, None), Feed("channel", CHANNEL)),
                     title)


def assert_safe_line(line: str, title: str | None = None) -> None:
    assert len(line.splitlines()) == 1 and line == line.splitlines()[0]
    parsed = parse_inbox(line + "\n")
    assert len(parsed) == 1 and parsed[0].annotation == ""
    video_id = parsed[0].sources[0].ident
    assert [ref.key for ref in parsed[0].sources] == [f"youtube:{video_id}"]
    shown = line.split(" https://www.youtube.com/watch?v=")[0]
    for bad in ("[[", "]]", "|", "`", "<", ">", "\u202e", "\u202c", " — "):
        assert bad not in shown, (bad, line)
    assert len(shown) <= len("- [ ] ") + 2 * 120 + 2
    # The daemon's status annotation goes on and comes off without touching the line.
    done = annotate(line + "\n", {0: Status("done", "[[Study Notes/X|X]]")})
    assert parse_inbox(done)[0].body == line
    if title is not None and title.isascii() and title.isalnum():
        assert safe_title(title) == title or len(title) > 120


def test_ordinary_titles_stay_readable() -> None:
    assert safe_title("Eigenvalues & Eigenvectors, Visually") == (
        "Eigenvalues & Eigenvectors, Visually")
    assert safe_title("Fourier-Reihen – eine Einführung") == "Fourier-Reihen – eine Einführung"
    assert safe_title("C# in 50% of the time #shorts") == r"C\# in 50\% of the time \#shorts"
    assert safe_title("  spaced\n  out  ") == "spaced out"
    assert len(safe_title("y" * 300)) == 120 and safe_title("y" * 300).endswith("…")
    # A right-to-left title is isolated so it cannot reorder the URL shown after it.
    assert safe_title("\u05e9\u05dc\u05d5\u05dd 1") == "\u2068\u05e9\u05dc\u05d5\u05dd 1\u2069"
