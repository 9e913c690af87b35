"""Doctor checks of the way out: the proxy and Tor settings, then one probe each of
YouTube and the Anthropic API.

The proxy and tor checks only read the config (and, for Tor, ask the control port for
its version); they add the proxy and Tor passwords to ``Context.secrets``. The two
probes are skipped with ``--no-network``. The YouTube probe is a single HEAD request
through the configured proxy that bypasses the pacing gate, so it writes no pacing
files and spends no request budget; the Anthropic probe is a plain GET that honours
``HTTPS_PROXY`` as the SDK does. A failed request is explained in plain words
(refused, DNS, timeout, TLS, proxy), never as a bare traceback.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

import requests

from daemon.config import CONFIG_RELPATH, Config
from daemon.doctor.model import Check, Context
from daemon.errors import ConfigError
from daemon.runner import resolve_backend


def check_proxy(c: Context) -> Check:
    from daemon.sources.http import proxy_config_from, redact

    if c.config is None:
        return Check("proxy", "skip", "config did not load (see config)")
    yt = c.config.section("youtube")
    for secret in (yt["webshare_password"], yt["tor_control_password"],
                   urlsplit(yt["proxy"]).password or ""):
        if secret:
            c.secrets.add(secret)
    try:
        proxy = proxy_config_from(c.config.to_dict())
    except ConfigError as exc:
        fix = ("pip install 'vaultd[socks]', or use an http:// proxy" if "PySocks" in str(exc)
               else f"fix {exc.setting} in {c.vault / CONFIG_RELPATH}")
        return Check("proxy", "fail", str(exc), fix)
    if proxy is None:
        env = next((os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                                            "all_proxy") if os.environ.get(k)), "")
        if env:
            return Check("proxy", "ok", f"none configured; YouTube requests use the "
                         f"environment proxy {redact(env)}")
        return Check("proxy", "ok", "none: YouTube is reached directly")
    if yt["webshare_username"]:
        return Check("proxy", "ok", f"Webshare rotating proxies (user {yt['webshare_username']})")
    return Check("proxy", "ok", f"{urlsplit(yt['proxy']).scheme} proxy {redact(yt['proxy'])}")


def check_tor(c: Context) -> Check:
    from daemon.sources.http import TorControlError, tor_version

    if c.config is None:
        return Check("tor", "skip", "config did not load (see config)")
    yt = c.config.section("youtube")
    port = yt["tor_control_port"]
    if not port:
        return Check("tor", "skip", "off (youtube.tor_control_port = 0)")
    try:
        version = tor_version(port, yt["tor_control_password"], timeout=c.timeout)
    except TorControlError as exc:
        if " 515 " in f" {exc} " or "Authentication" in str(exc):
            fix = "set youtube.tor_control_password to Tor's control password"
        else:
            fix = (f"start Tor with 'ControlPort {port}' in torrc, or set "
                   "youtube.tor_control_port = 0")
        return Check("tor", "fail", str(exc), fix)
    detail = f"Tor {version} answers on control port 127.0.0.1:{port}"
    if not urlsplit(yt["proxy"]).scheme.startswith("socks"):
        return Check("tor", "warn", f"{detail}, but youtube.proxy is not a SOCKS proxy, so "
                     "new circuits change nothing", 'set youtube.proxy = "socks5h://127.0.0.1:9050"')
    return Check("tor", "ok", detail)


def check_youtube(c: Context) -> Check:
    from daemon.sources.http import build_session

    if not c.network:
        return Check("youtube", "skip", "network checks off (--no-network)")
    if c.config is None or c.paths is None:
        return Check("youtube", "skip", "config or state folder unusable (see above)")
    try:
        session = build_session(c.config.to_dict(), c.paths.state)
    except ConfigError:
        return Check("youtube", "skip", "the proxy setting is invalid (see proxy)")
    session.gate = None  # one probe: no pacing files, no budget spent
    via = "via proxy" if session.proxies else "direct or via the environment proxy"
    url = c.youtube_url
    try:
        started = time.monotonic()
        resp = session.head(url, timeout=c.timeout, allow_redirects=False)
        took = time.monotonic() - started
    except requests.RequestException as exc:
        return Check("youtube", "fail", f"{url} unreachable ({via}): {_net_reason(exc, c)}",
                     "check the connection and youtube.proxy / HTTPS_PROXY")
    finally:
        session.close()
    location = resp.headers.get("Location", "")
    if resp.status_code == 429 or "/sorry/" in location:
        return Check("youtube", "warn", f"{url} answered {resp.status_code} ({via}): YouTube is "
                     "rate-limiting this IP", "wait an hour, or set youtube.proxy "
                     "(or Webshare) and keep youtube.request_budget_per_hour low")
    return Check("youtube", "ok", f"{url} answered HTTP {resp.status_code} in {took:.1f} s "
                 f"({via})")


def check_anthropic(c: Context) -> Check:
    if not c.network:
        return Check("anthropic", "skip", "network checks off (--no-network)")
    url = c.anthropic_url
    try:
        with requests.Session() as session:  # trust_env: HTTPS_PROXY applies, as in the SDK
            started = time.monotonic()
            resp = session.get(url, timeout=c.timeout, allow_redirects=False)
            took = time.monotonic() - started
    except requests.RequestException as exc:
        backend = _backend_name(c.config) if c.config is not None else "offline"
        needed = backend == "claude"
        return Check("anthropic", "fail" if needed else "warn",
                     f"{url} unreachable: {_net_reason(exc, c)}"
                     + ("" if needed else f" (not needed by the {backend} backend)"),
                     "check the connection, HTTPS_PROXY and ANTHROPIC_BASE_URL")
    return Check("anthropic", "ok", f"{url} answered HTTP {resp.status_code} in {took:.1f} s")


def _backend_name(config: Config) -> str:
    try:
        return resolve_backend(config)[0]
    except ConfigError:
        return "claude"


def _net_reason(exc: BaseException, c: Context) -> str:
    """A plain reason for a failed request: refused, DNS, timeout, TLS, proxy."""
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"the proxy failed ({_root(exc)})"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS certificate check failed (REQUESTS_CA_BUNDLE for a custom CA)"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {c.timeout:g} s"
    return _root(exc)


def _root(exc: BaseException) -> str:
    import socket

    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError):
            return "connection refused (nothing listens there)"
        if isinstance(e, socket.gaierror):
            return "the host name does not resolve (DNS)"
        if isinstance(e, TimeoutError):
            return "timed out"
        stack += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None),
                              *e.args) if isinstance(x, BaseException)]
    return f"{type(exc).__name__}: {exc}"
