"""The feed client against recorded-style Atom feeds served on a loopback http.server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from daemon.errors import (
    InvalidSourceError,
    IpBlockedError,
    NetworkError,
    RateLimitedError,
)
from daemon.sources.feeds import FeedEntry, fetch_feed, new_entries, parse_feed
from tests.helpers import closed_port

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
CHANNEL = "UCx9fKq3bLr7mN2pT5vW8yZa"
PLAYLIST = "PLr4nD0mL1stOfTalks7"
RATE_LIMITED = "UCrateLimitedChannel0000"
FORBIDDEN = "UCforbiddenChannel000000"
BROKEN = "UCbrokenServerChannel000"
HOSTILE = "UChostileXmlChannel00000"
HTML = "UCcaptivePortalChannel00"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE feed [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&lol3;</title></entry></feed>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE feed [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&secret;</title></feed>
"""


class _FeedHandler(BaseHTTPRequestHandler):
    requests_seen: list[str] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.requests_seen.append(self.path)
        query = parse_qs(url.query)
        if url.path != "/feeds/videos.xml":
            return self._send(404, b"not found")
        if "channel_id" in query:
            ident = query["channel_id"][0]
            fixture = FEEDS / f"channel_{ident}.xml"
        else:
            ident = query.get("playlist_id", [""])[0]
            fixture = FEEDS / f"playlist_{ident}.xml"
        if ident == RATE_LIMITED:
            return self._send(429, b"Too Many Requests", {"Retry-After": "120"})
        if ident == FORBIDDEN:
            return self._send(403, b"Forbidden")
        if ident == BROKEN:
            return self._send(500, b"oops")
        if ident == HOSTILE:
            return self._send(200, BILLION_LAUGHS, {"Content-Type": "text/xml"})
        if ident == HTML:
            return self._send(200, b"<html><body>Sign in to Wi-Fi<br></body></html>")
        if not fixture.is_file():
            return self._send(404, b"")
        self._send(200, fixture.read_bytes(), {"Content-Type": "text/xml; charset=UTF-8"})

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FeedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # a proxy in the test environment must not catch loopback
        yield s


def test_channel_feed_is_parsed(base_url: str, session: requests.Session) -> None:
    entries = fetch_feed("channel", CHANNEL, session=session, base_url=base_url)
    assert [e.video_id for e in entries] == ["Qm3vR8tXw2A", "b7Kp_1sZ-9c", "ZZt4nHq0LfE"]
    assert entries[0].title == "Eigenvalues & Eigenvectors, Visually"
    assert entries[1].title == "Fourier-Reihen – eine Einführung"
    assert entries[2].title == "Gradient descent, step by step"
    assert entries[0].published == datetime(2024, 5, 14, 16, 0, 21, tzinfo=UTC)
    assert entries[0].url == "https://www.youtube.com/watch?v=Qm3vR8tXw2A"
    assert f"/feeds/videos.xml?channel_id={CHANNEL}" in _FeedHandler.requests_seen


def test_playlist_feed_is_parsed(base_url: str, session: requests.Session) -> None:
    entries = fetch_feed("playlist", PLAYLIST, session=session, base_url=base_url)
    assert [e.video_id for e in entries] == ["Qm3vR8tXw2A", "Lx2cW9aPq0M"]
    assert f"/feeds/videos.xml?playlist_id={PLAYLIST}" in _FeedHandler.requests_seen


def test_unknown_channel_is_permanent(base_url: str, session: requests.Session) -> None:
    with pytest.raises(InvalidSourceError) as info:
        fetch_feed("channel", "UC" + "0" * 22, session=session, base_url=base_url)
    assert "404" in info.value.reason
    assert not info.value.transient


def test_malformed_ids_never_hit_the_network(session: requests.Session) -> None:
    # An unroutable base URL: reaching the network would raise NetworkError instead.
    for kind, ident in [("channel", "@somehandle"), ("channel", "UCshort"),
                        ("playlist", "PL&x=1"), ("video", "abc")]:
        with pytest.raises(InvalidSourceError):
            fetch_feed(kind, ident, session=session,  # type: ignore[arg-type]
                       base_url=f"http://127.0.0.1:{closed_port()}")


def test_rate_limit_is_transient_with_retry_after(
    base_url: str, session: requests.Session
) -> None:
    with pytest.raises(RateLimitedError) as info:
        fetch_feed("channel", RATE_LIMITED, session=session, base_url=base_url)
    assert info.value.retry_after == 120.0
    assert info.value.transient


def test_other_http_failures(base_url: str, session: requests.Session) -> None:
    with pytest.raises(IpBlockedError):
        fetch_feed("channel", FORBIDDEN, session=session, base_url=base_url)
    with pytest.raises(NetworkError) as info:
        fetch_feed("channel", BROKEN, session=session, base_url=base_url)
    assert "500" in info.value.reason
    with pytest.raises(NetworkError) as info:
        fetch_feed("channel", HTML, session=session, base_url=base_url)
    assert "not a readable Atom feed" in info.value.reason


def test_connection_refused_is_network_error(session: requests.Session) -> None:
    with pytest.raises(NetworkError):
        fetch_feed("channel", CHANNEL, session=session,
                   base_url=f"http://127.0.0.1:{closed_port()}", timeout=5)


def test_hostile_xml_is_refused(base_url: str, session: requests.Session) -> None:
    with pytest.raises(NetworkError) as info:
        fetch_feed("channel", HOSTILE, session=session, base_url=base_url)
    assert "DTD" in info.value.reason


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_parser_refuses_dtds(doc: bytes) -> None:
    from daemon.sources.feeds import UnsafeXmlError

    with pytest.raises(UnsafeXmlError):
        parse_feed(doc)


def test_undeclared_entity_is_an_error_not_an_expansion() -> None:
    doc = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&nope;</title></feed>'
    with pytest.raises(ValueError):
        parse_feed(doc)


def test_entry_id_fallback_and_junk_entries_skipped() -> None:
    doc = b"""<feed xmlns="http://www.w3.org/2005/Atom">
      <entry><id>yt:video:Lx2cW9aPq0M</id><title>no yt:videoId</title></entry>
      <entry><id>tag:example.org,2024:1</id><title>not a video</title></entry>
    </feed>"""
    entries = parse_feed(doc)
    assert entries == [FeedEntry("Lx2cW9aPq0M", "no yt:videoId", None)]


def test_new_entries_diff_and_order() -> None:
    feed = parse_feed((FEEDS / f"channel_{CHANNEL}.xml").read_bytes())
    seen = {"b7Kp_1sZ-9c"}
    fresh = new_entries(feed + feed[:1], seen)
    # oldest first, the seen one dropped, the duplicate counted once
    assert [e.video_id for e in fresh] == ["ZZt4nHq0LfE", "Qm3vR8tXw2A"]
    assert seen == {"b7Kp_1sZ-9c"}
    assert new_entries(feed, {e.video_id for e in feed}) == []
