"""HTTP plumbing for talking to YouTube without getting the user's IP banned.

This module owns three things every YouTube request goes through:

* **The session** (:func:`build_session`, kept per worker by :func:`shared_session`):
  proxy from config (``http://``, ``https://``,
  ``socks5h://``; SOCKS needs PySocks) or Webshare rotating proxies through
  youtube-transcript-api's ``WebshareProxyConfig``. With no proxy configured the
  session keeps ``trust_env`` so ``HTTPS_PROXY`` / ``REQUESTS_CA_BUNDLE`` work as usual.
  With a proxy configured ``trust_env`` is turned off, because requests lets an
  environment proxy silently override ``session.proxies``; the CA bundle from the
  environment is carried over explicitly. Every request gets a timeout.
* **The pacing gate** (:class:`PacingGate`): videos, not requests, are paced — a
  video's few requests go back to back, a token bucket lets a few videos start
  together and then spaces them by a jittered interval, and an hourly request budget
  (any 60 minutes) caps everything. A block seen by one worker pauses and slows all
  of them. State is shared by all worker processes through a lock file and a small
  JSON file in the state dir; callers reserve their slot under the lock and sleep
  outside it, so N workers queue up instead of hammering YouTube together.
* **Tor circuits** (:func:`renew_tor_circuit`): ``SIGNAL NEWNYM`` over the Tor control
  protocol on a plain socket, used between retries when ``tor_control_port`` is set.

Testing hook: when the environment variable ``VAULTD_YOUTUBE_ORIGIN`` is set (e.g.
``http://127.0.0.1:8123``), :func:`build_session` mounts :class:`OriginRewriteAdapter`,
which sends every request for ``www.youtube.com``, ``youtube.com``, ``m.youtube.com``
and ``i.ytimg.com`` to that origin instead, keeping path and query (no proxy, since the
stand-in is local). Pacing still counts the YouTube host and cookies still belong to
YouTube's domain. End-to-end tests use it to point a *subprocess* daemon at a loopback
YouTube stand-in; it is not a user setting and is logged as a warning when active.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from youtube_transcript_api.proxies import (
    GenericProxyConfig,
    ProxyConfig,
    WebshareProxyConfig,
)

from daemon.errors import ConfigError, RateLimitedError

try:  # POSIX: systemd and launchd are the supported platforms
    import fcntl
except ImportError:  # pragma: no cover - Windows: in-process lock only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4", "socks4a")
JITTER = 0.5  # each gap between videos is min_interval * (1 + JITTER * U[0, 1))
BURST_VIDEOS = 5  # videos that may start together before the sustained pace applies
REQUESTS_PER_VIDEO = 3  # watch page, player, captions: room a video needs in the budget
BUDGET_WINDOW_SECONDS = 3600.0
BLOCK_MEMORY_SECONDS = 900.0  # a block keeps slowing the pace for this long
BLOCK_PAUSE_MAX_SECONDS = 1800.0
ORIGIN_ENV = "VAULTD_YOUTUBE_ORIGIN"  # testing hook, see the module docstring
REWRITTEN_HOSTS = ("www.youtube.com", "youtube.com", "m.youtube.com", "i.ytimg.com")
_WARNED: set[str] = set()  # origins already announced in this process
_THREAD_LOCK = threading.Lock()  # flock is per open file, this guards the no-fcntl case


# --------------------------------------------------------------------------- proxies


def proxy_config_from(config: dict[str, dict[str, Any]]) -> ProxyConfig | None:
    """The youtube-transcript-api proxy config for ``[youtube]``, or None for none.

    Webshare credentials win over ``proxy``. Raises ConfigError naming the setting for
    an unsupported scheme or a SOCKS proxy without PySocks installed.
    """
    yt = config["youtube"]
    if yt.get("webshare_username"):
        if not yt.get("webshare_password"):
            raise ConfigError("youtube.webshare_password", "required with webshare_username")
        return WebshareProxyConfig(yt["webshare_username"], yt["webshare_password"])
    url = str(yt.get("proxy", "")).strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise ConfigError(
            "youtube.proxy",
            f"must look like scheme://host:port with scheme one of {', '.join(PROXY_SCHEMES)}",
        )
    if parts.scheme.startswith("socks"):
        try:
            import socks  # noqa: F401  (PySocks, pulled in by requests[socks])
        except ImportError:
            raise ConfigError(
                "youtube.proxy",
                "SOCKS proxies need PySocks, which is not installed: "
                "pip install 'vaultd[socks]'",
            ) from None
    return GenericProxyConfig(http_url=url, https_url=url)


def redact(url: str) -> str:
    """A proxy URL fit for logs: the password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def apply_proxy(session: requests.Session, proxy_config: ProxyConfig | None) -> None:
    """Point ``session`` at the proxy; with None leave environment handling alone."""
    if proxy_config is None:
        return
    session.proxies = dict(proxy_config.to_requests_dict())
    # requests merges environment proxies *over* session.proxies, so a configured proxy
    # only takes effect with trust_env off; keep the user's CA bundle explicitly.
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    if proxy_config.prevent_keeping_connections_alive:
        session.headers["Connection"] = "close"  # rotating proxies: new IP per request


# --------------------------------------------------------------------------- pacing


class RequestBudgetExceeded(RateLimitedError):
    """Our own hourly request budget is used up (YouTube did not complain yet)."""


class PacingGate:
    """Videos paced like a viewer, requests capped per hour; shared across processes.

    A *video* is the unit of pacing: :meth:`wait` reserves a video's start under the lock
    (file lock + JSON state in ``<state>/pacing/``, so every worker process queues on
    the same state), releases the lock and sleeps until the slot; the video's further
    requests then go back to back through :meth:`count`. A request made outside a video
    (a playlist page) is a video of one request.

    * **Token bucket**: up to ``burst`` videos start together (a jittered fraction of a
      second apart, like tabs opened one after another); after that one video per
      ``min_interval * (1 + jitter * U[0, 1))``. Idle time refills the bucket.
    * **Hourly budget**: at most ``budget_per_hour`` requests in *any* 3,600 s window
      (a sliding log of request times, not a fixed window, so two adjacent hours can
      never add up to twice the budget). A video starts only with room for
      ``expect`` requests; a request over the budget raises
      :class:`RequestBudgetExceeded` with ``retry_after`` = when room frees up.
    * **Blocks** (:meth:`blocked`): a 429 or an IP block seen by one worker empties the
      bucket, pauses every worker's next video and doubles the interval per recent
      block (forgotten one per :data:`BLOCK_MEMORY_SECONDS` without a block).

    ``clock`` must be wall time (shared between processes); tests inject a fake clock.
    """

    def __init__(
        self,
        state_dir: Path,
        min_interval: float,
        *,
        budget_per_hour: int = 0,
        burst: int = BURST_VIDEOS,
        jitter: float = JITTER,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.folder = Path(state_dir) / "pacing"
        self.min_interval = float(min_interval)
        self.budget_per_hour = int(budget_per_hour)
        self.burst = max(int(burst), 1)
        self.jitter = float(jitter)
        self.clock = clock
        self.sleep = sleep
        self.rng = rng

    @property
    def off(self) -> bool:
        return self.min_interval <= 0 and self.budget_per_hour <= 0

    def _files(self, host: str) -> tuple[Path, Path]:
        safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in host) or "_"
        return self.folder / f"{safe}.lock", self.folder / f"{safe}.json"

    @contextmanager
    def _locked(self, lock_path: Path) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with _THREAD_LOCK if fcntl is None else nullcontext():
            with open(lock_path, "a+b") as handle:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    if fcntl is not None:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @contextmanager
    def _state(self, host: str) -> Iterator[dict[str, Any]]:
        lock_path, state_path = self._files(host)
        with self._locked(lock_path):
            state = _read_state(state_path)
            yield state
            _write_state(state_path, state)

    def _budget_check(self, host: str, state: dict[str, Any], now: float, need: int) -> None:
        """Drop request times older than an hour; raise unless ``need`` more fit."""
        sent = [t for t in state.get("sent", []) if now - t < BUDGET_WINDOW_SECONDS]
        state["sent"] = sent
        if not self.budget_per_hour:
            state["sent"] = []
            return
        need = min(need, self.budget_per_hour)
        if len(sent) + need > self.budget_per_hour:
            # Room for ``need`` once the oldest (len + need - budget) times leave the hour.
            frees_at = sorted(sent)[len(sent) + need - self.budget_per_hour - 1]
            raise RequestBudgetExceeded(
                f"vaultd's hourly budget of {self.budget_per_hour} requests to {host} "
                "is used up; waiting so YouTube does not block this computer",
                retry_after=max(frees_at + BUDGET_WINDOW_SECONDS - now, 1.0),
            )

    def strikes(self, state: dict[str, Any], now: float) -> int:
        """Blocks that still slow the pace: one is forgotten per quiet BLOCK_MEMORY."""
        quiet = now - float(state.get("last_block", 0.0))
        return max(0, int(state.get("strikes", 0)) - int(quiet // BLOCK_MEMORY_SECONDS))

    def wait(self, host: str, expect: int = 1) -> float:
        """Reserve the start of a video of about ``expect`` requests; count its first
        request; sleep until the slot. Returns the slot time."""
        if self.off:
            return self.clock()  # pacing off: no shared state to keep
        with self._state(host) as state:
            now = self.clock()
            self._budget_check(host, state, now, expect)
            slot = max(now, float(state.get("next_free", 0.0)),
                       float(state.get("blocked_until", 0.0)))
            if self.min_interval > 0:
                interval = self.min_interval * 2 ** self.strikes(state, slot)
                last = float(state.get("refilled_at", slot))
                tokens = min(float(self.burst),
                             float(state.get("tokens", self.burst)) + (slot - last) / interval)
                if tokens < 1.0:  # bucket empty: the sustained, jittered rate
                    slot += (1.0 - tokens) * interval * (1.0 + self.jitter * self.rng())
                    tokens, state["next_free"] = 1.0, slot
                else:  # within a burst videos start a moment apart, never in one instant
                    state["next_free"] = slot + self.min_interval * self.jitter * self.rng()
                state["tokens"], state["refilled_at"] = tokens - 1.0, slot
            state["sent"].append(slot)
            state["count"] = len(state["sent"])
        if slot > now:
            self.sleep(slot - now)
        return slot

    def count(self, host: str) -> None:
        """Count one more request of the video under way (no wait; the budget holds)."""
        if self.off:
            return
        with self._state(host) as state:
            now = self.clock()
            self._budget_check(host, state, now, 1)
            state["sent"].append(now)
            state["count"] = len(state["sent"])

    def blocked(self, host: str, retry_after: float | None = None) -> float:
        """YouTube blocked or throttled us: every worker's next video waits. Returns the
        pause: Retry-After, or the interval times 4 per recent block (at most
        :data:`BLOCK_PAUSE_MAX_SECONDS`), whichever is longer."""
        if self.off:
            return 0.0
        with self._state(host) as state:
            now = self.clock()
            strikes = min(self.strikes(state, now) + 1, 8)
            base = self.min_interval if self.min_interval > 0 else 1.0
            pause = min(base * 4 ** strikes, BLOCK_PAUSE_MAX_SECONDS)
            pause = max(pause, retry_after or 0.0)
            state["strikes"], state["last_block"] = strikes, now
            state["blocked_until"] = max(float(state.get("blocked_until", 0.0)), now + pause)
            state["tokens"], state["refilled_at"] = 0.0, now
        log.warning("YouTube blocked a request; every worker pauses %.0f s and then goes "
                    "%dx slower for a while", pause, 2 ** strikes)
        return pause


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"sent": []}
    if not isinstance(data, dict):
        return {"sent": []}
    state: dict[str, Any] = {}
    for key, value in data.items():
        try:
            state[key] = [float(t) for t in value] if key == "sent" else float(value)
        except (TypeError, ValueError):
            continue
    state.setdefault("sent", [])
    return state


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


class PacedSession(requests.Session):
    """A Session whose sends (redirects included) pass the pacing gate and get a default
    timeout (the library passes none).

    Inside :meth:`video` the first request to a host waits for a video slot and the
    rest only count against the hourly budget; outside it, each request is its own
    video. ``requests`` counts the sends of the video under way.
    """

    def __init__(self, gate: PacingGate | None = None, timeout: float = 20.0) -> None:
        super().__init__()
        self.gate = gate
        self.default_timeout = timeout
        self._video_hosts: set[str] | None = None
        self.requests = 0

    @contextmanager
    def video(self) -> Iterator[PacedSession]:
        """One video's requests: paced as a unit, counted in ``self.requests``."""
        self._video_hosts, self.requests = set(), 0
        try:
            yield self
        finally:
            self._video_hosts = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.gate is not None:
            host = urlsplit(request.url or "").hostname or "unknown"
            if self._video_hosts is None:
                self.gate.wait(host)
            elif host in self._video_hosts:
                self.gate.count(host)
            else:
                self.gate.wait(host, expect=REQUESTS_PER_VIDEO)
                self._video_hosts.add(host)
        self.requests += 1
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().send(request, **kwargs)


def gate_from(config: dict[str, dict[str, Any]], state_dir: Path) -> PacingGate:
    """The pacing gate ``[youtube]`` asks for."""
    yt = config["youtube"]
    return PacingGate(
        state_dir,
        float(yt.get("min_request_interval_seconds", 2.0)),
        budget_per_hour=int(yt.get("request_budget_per_hour", 0)),
        burst=int(yt.get("burst_videos", BURST_VIDEOS)),
    )


def build_session(
    config: dict[str, dict[str, Any]],
    state_dir: Path,
    proxy_config: ProxyConfig | None = None,
) -> PacedSession:
    """A paced session for YouTube configured from ``[youtube]``.

    ``proxy_config`` defaults to :func:`proxy_config_from` ``(config)``.
    """
    yt = config["youtube"]
    session = PacedSession(gate_from(config, state_dir), float(yt.get("timeout_seconds", 20.0)))
    if proxy_config is None:
        proxy_config = proxy_config_from(config)
    apply_proxy(session, proxy_config)
    mount_test_origin(session)
    return session


_kept = threading.local()  # per thread: {settings key: session}


def shared_session(config: dict[str, dict[str, Any]], state_dir: Path,
                   proxy_config: ProxyConfig | None = None) -> PacedSession:
    """:func:`build_session` kept for this thread's next videos (a worker process
    fetches one video after another): connections (a TLS handshake each) and YouTube's
    consent cookies are reused instead of renewed three or four times per video. New
    settings (a reload) give a new session; :func:`drop_shared_sessions` after a block
    makes the next video start afresh (for Tor, a new circuit needs new connections)."""
    key = json.dumps([config["youtube"], str(state_dir), os.environ.get(ORIGIN_ENV, "")],
                     sort_keys=True, default=str)
    sessions: dict[str, PacedSession] = getattr(_kept, "sessions", {})
    _kept.sessions = sessions
    session = sessions.get(key)
    if session is None:
        drop_shared_sessions()
        session = sessions[key] = build_session(config, state_dir, proxy_config)
    return session


def drop_shared_sessions() -> None:
    sessions: dict[str, PacedSession] = getattr(_kept, "sessions", {})
    for session in sessions.values():
        session.close()
    sessions.clear()


# --------------------------------------------------------------------------- test hook


class OriginRewriteAdapter(HTTPAdapter):
    """Sends each request to ``origin`` (scheme://host:port), keeping path and query.

    The request is copied before rewriting, so the session still sees the original
    YouTube URL (pacing host, cookie domain, redirects). Proxies are not used: the
    origin is a local stand-in.
    """

    def __init__(self, origin: str) -> None:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(ORIGIN_ENV, f"must look like http://host:port, got {origin!r}")
        self.scheme, self.netloc = parts.scheme, parts.netloc
        super().__init__()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        target = request.copy()
        parts = urlsplit(request.url or "")
        target.url = urlunsplit((self.scheme, self.netloc, parts.path or "/", parts.query, ""))
        return super().send(target, stream=stream, timeout=timeout, verify=verify, cert=cert,
                            proxies={})


def mount_test_origin(session: requests.Session) -> None:
    """Testing hook: route YouTube hosts to ``$VAULTD_YOUTUBE_ORIGIN`` when it is set."""
    origin = os.environ.get(ORIGIN_ENV, "").strip()
    if not origin:
        return
    adapter = OriginRewriteAdapter(origin)
    for host in REWRITTEN_HOSTS:
        for scheme in ("https", "http"):
            session.mount(f"{scheme}://{host}/", adapter)
    if origin not in _WARNED:
        _WARNED.add(origin)
        log.warning("testing hook %s is set: YouTube requests go to %s", ORIGIN_ENV, origin)


# --------------------------------------------------------------------------- tor


class TorControlError(Exception):
    """The Tor control port could not be reached or refused a command."""


def _tor_quote(password: str) -> str:
    return '"' + password.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tor_command(stream: Any, line: str) -> list[str]:
    """Send one command; return the reply lines. Raises on a non-250 status."""
    stream.write(line.encode("utf-8") + b"\r\n")
    stream.flush()
    replies: list[str] = []
    while True:
        raw = stream.readline()
        if not raw:
            raise TorControlError("Tor closed the control connection")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        replies.append(text)
        if len(text) >= 4 and text[3] == " ":  # "250 OK" ends; "250-..." continues
            break
    status = replies[-1][:3]
    if status != "250":
        command = line.split(" ", 1)[0]
        raise TorControlError(f"Tor refused {command}: {replies[-1]}")
    return replies


@contextmanager
def _tor_control(port: int, password: str, host: str, timeout: float) -> Iterator[Any]:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise TorControlError(f"cannot reach the Tor control port {host}:{port}: {exc}") from exc
    try:
        stream = sock.makefile("rwb")
        auth = "AUTHENTICATE" + (f" {_tor_quote(password)}" if password else "")
        _tor_command(stream, auth)
        yield stream
        try:
            _tor_command(stream, "QUIT")
        except (TorControlError, OSError):
            pass
    except OSError as exc:
        raise TorControlError(f"Tor control port {host}:{port} failed: {exc}") from exc
    finally:
        sock.close()


def renew_tor_circuit(
    port: int, password: str = "", *, host: str = "127.0.0.1", timeout: float = 10.0
) -> None:
    """Ask Tor for new circuits (``SIGNAL NEWNYM``): the next connections get a new exit IP.

    Tor rate-limits NEWNYM (about one per 10 s) but still answers 250. Connections kept
    alive stay on their old circuit, so use a fresh session afterwards.
    """
    with _tor_control(port, password, host, timeout) as stream:
        _tor_command(stream, "SIGNAL NEWNYM")
    log.info("asked Tor for a new circuit (control port %s)", port)


def tor_version(
    port: int, password: str = "", *, host: str = "127.0.0.1", timeout: float = 5.0
) -> str:
    """Authenticate and return Tor's version: a reachability check for ``vaultd doctor``."""
    with _tor_control(port, password, host, timeout) as stream:
        replies = _tor_command(stream, "GETINFO version")
    for reply in replies:
        if "version=" in reply:
            return reply.split("version=", 1)[1].strip()
    return "unknown"
