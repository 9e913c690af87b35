"""HTTP plumbing for YouTube: proxies, environment handling, pacing, budget, Tor.

Everything runs on loopback: a fake Tor control port and a fake HTTP proxy on
127.0.0.1, `responses` for YouTube. Pacing is checked on recorded slot times from an
injected clock (and, across processes, on the slots the real gate hands out).
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import re
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from daemon.config import Config
from daemon.errors import ConfigError, IpBlockedError, RateLimitedError
from daemon.sources.http import (
    PacedSession,
    PacingGate,
    RequestBudgetExceeded,
    TorControlError,
    build_session,
    proxy_config_from,
    redact,
    renew_tor_circuit,
    tor_version,
)
from daemon.sources.youtube import fetch_youtube
from tests.helpers import FakeClock

YT = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


def config(**youtube: Any) -> dict[str, dict[str, Any]]:
    cfg = Config.defaults().to_dict()
    cfg["youtube"].update(youtube)
    return cfg


def env_settings(session: requests.Session, url: str = YT) -> dict[str, Any]:
    """What requests will actually use for ``url`` (session + environment merged)."""
    return session.merge_environment_settings(url, {}, None, None, None)


# --------------------------------------------------------------------------- proxies


def test_no_proxy_keeps_environment_handling(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp-ca.pem")
    session = build_session(config(), tmp_path)
    assert session.trust_env is True and session.proxies == {}
    merged = env_settings(session)
    assert merged["proxies"]["https"] == "http://corp-proxy.example:3128"
    assert merged["verify"] == "/etc/corp-ca.pem"


def test_configured_proxy_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp-ca.pem")
    session = build_session(config(proxy="http://user:pw@10.0.0.5:8080"), tmp_path)
    assert session.proxies == {"http": "http://user:pw@10.0.0.5:8080",
                               "https": "http://user:pw@10.0.0.5:8080"}
    assert session.trust_env is False
    merged = env_settings(session)
    assert merged["proxies"]["https"] == "http://user:pw@10.0.0.5:8080"
    assert merged["verify"] == "/etc/corp-ca.pem"


def test_socks_proxy_needs_pysocks(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "socks", None)  # make `import socks` fail
    with pytest.raises(ConfigError) as err:
        build_session(config(proxy="socks5h://127.0.0.1:9050"), tmp_path)
    assert err.value.setting == "youtube.proxy"
    assert "pip install 'vaultd[socks]'" in err.value.problem


def test_socks_proxy_with_pysocks(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "socks", type(sys)("socks"))  # PySocks stand-in
    session = build_session(config(proxy="socks5h://127.0.0.1:9050"), tmp_path)
    assert session.proxies["https"] == "socks5h://127.0.0.1:9050"


@pytest.mark.parametrize("bad", ["ftp://proxy:21", "127.0.0.1:9050", "http://"])
def test_bad_proxy_url_names_the_setting(bad):
    with pytest.raises(ConfigError) as err:
        proxy_config_from(config(proxy=bad))
    assert err.value.setting == "youtube.proxy"


def test_webshare(tmp_path):
    session = build_session(config(webshare_username="alice", webshare_password="s3cret"),
                            tmp_path)
    url = "http://alice-rotate:s3cret@p.webshare.io:80/"
    assert session.proxies == {"http": url, "https": url}
    assert session.headers["Connection"] == "close" and session.trust_env is False
    with pytest.raises(ConfigError):
        proxy_config_from(config(webshare_username="alice"))


def test_redact_hides_the_password():
    assert redact("http://alice:s3cret@proxy:8080") == "http://alice:***@proxy:8080"
    assert redact("socks5h://127.0.0.1:9050") == "socks5h://127.0.0.1:9050"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        _ProxyHandler.seen.append(self.path)
        body = b"via proxy"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def test_requests_really_go_through_the_configured_proxy(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # must be ignored
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = config(proxy=f"http://127.0.0.1:{server.server_port}",
                     min_request_interval_seconds=0)
        with build_session(cfg, tmp_path) as session:
            reply = session.get("http://www.youtube.com/oembed?format=json")
    finally:
        server.shutdown()
        server.server_close()
    assert reply.text == "via proxy"
    assert _ProxyHandler.seen[-1] == "http://www.youtube.com/oembed?format=json"


# --------------------------------------------------------------------------- pacing


def test_gate_spaces_videos_with_jitter_once_the_burst_is_used(tmp_path):
    """burst=1: every video after the first waits 2 s * (1 + 0.5 * roll)."""
    clock = FakeClock()
    rolls = iter([0.0, 0.0, 1.0, 0.5])  # the first video's in-burst gap, then deficits
    gate = PacingGate(tmp_path, 2.0, burst=1, jitter=0.5, clock=clock, sleep=clock.sleep,
                      rng=lambda: next(rolls))
    released = []
    for _ in range(4):
        gate.wait("www.youtube.com")
        released.append(clock.now)
    gaps = [round(b - a, 6) for a, b in zip(released, released[1:], strict=False)]
    assert gaps == [2.0, 3.0, 2.5]


def test_gate_is_per_host_and_lets_idle_time_count(tmp_path):
    clock = FakeClock()
    gate = PacingGate(tmp_path, 5.0, burst=1, jitter=0.0, clock=clock, sleep=clock.sleep)
    gate.wait("www.youtube.com")
    gate.wait("example.org")  # other host: no wait
    assert clock.sleeps == []
    clock.now += 3.0
    gate.wait("www.youtube.com")
    assert clock.sleeps == [2.0]
    clock.now += 60.0
    gate.wait("www.youtube.com")
    assert clock.sleeps == [2.0]


def test_gate_state_is_shared_between_gate_objects(tmp_path):
    clock = FakeClock()
    one = PacingGate(tmp_path, 4.0, burst=1, jitter=0.0, clock=clock, sleep=clock.sleep)
    two = PacingGate(tmp_path, 4.0, burst=1, jitter=0.0, clock=clock, sleep=clock.sleep)
    assert [one.wait("h"), two.wait("h"), one.wait("h")] == [
        clock.now - 8.0, clock.now - 4.0, clock.now]


def test_budget_makes_jobs_wait(tmp_path):
    """At most 3 requests in any hour: a sliding hour, not a fixed one."""
    clock = FakeClock()
    gate = PacingGate(tmp_path, 0.0, budget_per_hour=3, clock=clock, sleep=clock.sleep)
    gate.wait("www.youtube.com")  # t0
    for _ in range(2):
        clock.now += 600
        gate.count("www.youtube.com")  # t0 + 10 min, t0 + 20 min
    clock.now += 600
    with pytest.raises(RequestBudgetExceeded) as err:
        gate.wait("www.youtube.com")
    assert isinstance(err.value, RateLimitedError) and err.value.transient
    assert err.value.retry_after == pytest.approx(1800.0)  # when the t0 request leaves
    with pytest.raises(RequestBudgetExceeded) as err:
        gate.wait("www.youtube.com", expect=2)
    assert err.value.retry_after == pytest.approx(2400.0)  # room for two: t0 + 70 min
    clock.now += 1800
    gate.wait("www.youtube.com")  # the t0 request left the last hour: room for one
    with pytest.raises(RequestBudgetExceeded):
        gate.count("www.youtube.com")  # ...but not two


def test_pacing_off_keeps_no_shared_state(tmp_path):
    """Interval 0 and no budget: requests go straight out and no pacing files appear."""
    clock = FakeClock()
    gate = PacingGate(tmp_path, 0.0, budget_per_hour=0, clock=clock, sleep=clock.sleep)
    assert [gate.wait("www.youtube.com") for _ in range(5)] == [clock.now] * 5
    gate.count("www.youtube.com")
    assert gate.blocked("www.youtube.com", 30.0) == 0.0
    assert not (tmp_path / "pacing").exists()


def _worker(state_dir: str, out: Any) -> None:
    gate = PacingGate(Path(state_dir), 0.05, burst=1, jitter=0.0)
    for _ in range(3):
        slot = gate.wait("www.youtube.com")
        out.put((slot, time.time()))


def test_gate_spaces_videos_across_processes(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=30) for _ in range(9)]
    for proc in procs:
        proc.join(timeout=30)
    slots = sorted(slot for slot, _ in results)
    assert all(b - a >= 0.05 - 1e-6 for a, b in zip(slots, slots[1:], strict=False))
    assert all(released >= slot - 1e-3 for slot, released in results)


def test_paced_session_paces_videos_and_sets_a_timeout(tmp_path):
    """Outside a video each request is paced; inside one only the first waits."""
    clock = FakeClock()
    gate = PacingGate(tmp_path, 1.5, burst=1, jitter=0.0, clock=clock, sleep=clock.sleep)
    with responses.RequestsMock() as rsps:
        rsps.get("https://www.youtube.com/a", body="a")
        with PacedSession(gate, timeout=7.0) as session:
            for _ in range(3):
                session.get("https://www.youtube.com/a")
            session.get("https://www.youtube.com/a", timeout=3)
            assert clock.sleeps == [1.5, 1.5, 1.5]
            for _ in range(2):
                with session.video():
                    for _ in range(3):
                        session.get("https://www.youtube.com/a")
                    assert session.requests == 3
        assert clock.sleeps == [1.5, 1.5, 1.5, 1.5, 1.5]  # one wait per video
        assert [c.request.req_kwargs["timeout"] for c in rsps.calls][:4] == [7.0, 7.0, 7.0, 3]


# --------------------------------------------------------------------------- tor


class FakeTor(socketserver.ThreadingTCPServer):
    """A tiny Tor control port: AUTHENTICATE, SIGNAL NEWNYM, GETINFO version, QUIT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, password: str) -> None:
        self.password = password
        self.commands: list[str] = []
        super().__init__(("127.0.0.1", 0), _TorHandler)


class _TorHandler(socketserver.StreamRequestHandler):
    server: FakeTor

    def handle(self) -> None:
        authed = False
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            self.server.commands.append(line)
            if line.startswith("AUTHENTICATE"):
                quoted = line[len("AUTHENTICATE"):].strip()
                given = re.sub(r"\\(.)", r"\1", quoted[1:-1]) if quoted else ""
                authed = given == self.server.password
                self._reply(b"250 OK" if authed else b"515 Authentication failed")
            elif not authed:
                self._reply(b"514 Authentication required.")
            elif line == "SIGNAL NEWNYM":
                self._reply(b"250 OK")
            elif line == "GETINFO version":
                self._reply(b"250-version=0.4.8.10\r\n250 OK")
            elif line == "QUIT":
                self._reply(b"250 closing connection")
                return
            else:
                self._reply(b'510 Unrecognized command "' + line.encode() + b'"')

    def _reply(self, data: bytes) -> None:
        self.wfile.write(data + b"\r\n")
        self.wfile.flush()


@pytest.fixture
def fake_tor() -> Iterator[FakeTor]:
    server = FakeTor(password='pa"ss\\word')
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_renew_tor_circuit(fake_tor):
    renew_tor_circuit(fake_tor.server_address[1], 'pa"ss\\word')
    assert fake_tor.commands == ['AUTHENTICATE "pa\\"ss\\\\word"', "SIGNAL NEWNYM", "QUIT"]


def test_tor_wrong_password_and_closed_port(fake_tor):
    with pytest.raises(TorControlError, match="515"):
        renew_tor_circuit(fake_tor.server_address[1], "wrong")
    assert "SIGNAL NEWNYM" not in fake_tor.commands
    closed = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(TorControlError, match="cannot reach"):
        renew_tor_circuit(port, "", timeout=2)


def test_tor_version_for_doctor(fake_tor):
    assert tor_version(fake_tor.server_address[1], 'pa"ss\\word') == "0.4.8.10"


def test_blocked_fetch_asks_tor_for_a_new_circuit(fake_tor, tmp_path):
    cfg = config(tor_control_port=fake_tor.server_address[1],
                 tor_control_password='pa"ss\\word')
    with responses.RequestsMock() as rsps:
        rsps.get("https://www.youtube.com/watch",
                 body='<html><div class="g-recaptcha"></div></html>')
        with pytest.raises(IpBlockedError):
            fetch_youtube("dQw4w9WgXcQ", cfg, tmp_path, session=requests.Session())
    assert "SIGNAL NEWNYM" in fake_tor.commands


def test_fetch_without_a_session_uses_the_paced_session(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # responses answers first
    fixtures = Path(__file__).resolve().parent / "fixtures" / "youtube"
    cfg = config(min_request_interval_seconds=0.0, request_budget_per_hour=100)
    with responses.RequestsMock() as rsps:
        rsps.get("https://www.youtube.com/watch", body=(fixtures / "watch.html").read_text())
        rsps.post("https://www.youtube.com/youtubei/v1/player",
                  body=(fixtures / "player.json").read_text(), content_type="application/json")
        rsps.get("https://www.youtube.com/api/timedtext",
                 body=(fixtures / "transcript.xml").read_text())
        transcript, _ = fetch_youtube("dQw4w9WgXcQ", cfg, tmp_path)
        assert [c.request.req_kwargs["timeout"] for c in rsps.calls] == [20.0] * 3
        assert rsps.calls[0].request.req_kwargs["proxies"]["https"] == "http://127.0.0.1:9"
    state = json.loads((tmp_path / "pacing" / "www.youtube.com.json").read_text())
    assert state["count"] == len(state["sent"]) == 3 and transcript.segments


def test_videos_in_a_row_share_one_session_until_a_block(tmp_path):
    """A worker fetching video after video keeps its connections and YouTube's cookies;
    after a block the next video starts on a fresh session (and, with Tor, a new
    circuit needs new connections)."""
    fixtures = Path(__file__).resolve().parent / "fixtures" / "youtube"
    cfg = config(min_request_interval_seconds=0.0)
    watch = (fixtures / "watch.html").read_text()

    def cookie_of(call) -> str:
        return call.request.headers.get("Cookie", "")

    with responses.RequestsMock() as rsps:
        first = rsps.get("https://www.youtube.com/watch", body=watch,
                         headers={"Set-Cookie": "VISITOR_INFO1_LIVE=abc; Domain=.youtube.com;"
                                                " Path=/"})
        rsps.post("https://www.youtube.com/youtubei/v1/player",
                  body=(fixtures / "player.json").read_text(), content_type="application/json")
        rsps.get("https://www.youtube.com/api/timedtext",
                 body=(fixtures / "transcript.xml").read_text())
        fetch_youtube("dQw4w9WgXcQ", cfg, tmp_path)
        fetch_youtube("aaaaaaaaaaa", cfg, tmp_path)
        assert "VISITOR_INFO1_LIVE=abc" in cookie_of(rsps.calls[3])  # 2nd video's watch page
        rsps.remove(first)
        rsps.get("https://www.youtube.com/watch",
                 body='<html><div class="g-recaptcha"></div></html>')
        with pytest.raises(IpBlockedError):
            fetch_youtube("bbbbbbbbbbb", cfg, tmp_path)
        assert "VISITOR_INFO1_LIVE" in cookie_of(rsps.calls[-1])
        with pytest.raises(IpBlockedError):
            fetch_youtube("ccccccccccc", cfg, tmp_path)
        assert "VISITOR_INFO1_LIVE" not in cookie_of(rsps.calls[-1])  # a new session

