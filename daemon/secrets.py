"""The secrets vaultd holds, and the one scrubber that keeps them out of what it shows.

This module owns two things:

* **API keys.** :func:`load_api_key` reads the Anthropic key from ``ANTHROPIC_API_KEY``
  or ``generate.api_key_file`` (mode 0600). Kept apart from the Claude client so the
  daemon can check the key at start (and ``status``/``doctor`` can tell whether there is
  one) without importing the SDK.
* **The scrubber.** :func:`scrub` replaces every secret vaultd knows of by ``***``:
  the API keys (environment or key file, ``OPENAI_API_KEY`` too), the password of every
  proxy URL (``youtube.proxy``, ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``), the Tor
  control password and the Webshare password, plus anything *shaped* like a secret: an
  Anthropic or OpenAI key (``sk-ant-...``, ``sk-...``) and the password part of any
  ``scheme://user:password@host`` URL, known or not. Text from outside (an API or a
  proxy error that repeats the key, an exception message) passes through it at every
  boundary where vaultd logs, stores or shows text: the ledger's ``last_error`` (so the
  inbox line and ``status`` too), ``status``/``status --json``, ``doctor``, the log
  handler (:class:`ScrubFilter`) and the state dir's ``daemon.json``.

It also holds the **region key**: the random secret (``region.key`` in the state dir,
mode 0600) under which :func:`region_tag` tags the Related region of each note, so that
generated text cannot forge a region vaultd would edit (see :mod:`vault_tools.related`).

Secrets become known by registration: loading a key registers it, and
:func:`register_config` registers the secret settings of a config (the daemon calls it
at start and on reload; a worker process when it reads its job's config). Environment
secrets are read on every call, so a process that registered nothing still scrubs them.
The registry is per process, append-only and thread-safe; a value shorter than
:data:`MIN_SECRET` characters is not registered (it would mask ordinary words).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from daemon.errors import ConfigError
from vault_tools import related

MASK = "***"
MIN_SECRET = 4
KEY_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "VAULTD_TRANSCRIBE_API_KEY")
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
             "all_proxy")
# A key by its shape: sk-ant-api03-..., sk-proj-..., sk-...: long, with a digit in it
# (so that words such as "sk-learn" stay).
_KEY_SHAPE = re.compile(r"\b(sk-(?:ant-)?)(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{16,}")
# The password of any URL with credentials: scheme://user:password@host
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)([^\s@/]+)(@)")

REGION_KEY_FILE = "region.key"

_registered: set[str] = set()
_lock = threading.Lock()
_region_keys: dict[Path, bytes] = {}


# --------------------------------------------------------------------------- keys


def load_api_key(gen: Mapping[str, Any]) -> str | None:
    """The Anthropic API key from ``ANTHROPIC_API_KEY`` or ``generate.api_key_file``;
    None when neither is set.

    Raises ConfigError (naming ``generate.api_key_file``) for a missing, empty or
    group/other-readable key file. The message never contains the key. The key found
    is registered with the scrubber.
    """
    env = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if env:
        return env
    return read_key_file(str(gen.get("api_key_file") or ""), "generate.api_key_file")


def load_openai_key(section: Mapping[str, Any]) -> str | None:
    """The OpenAI-compatible server's key: ``OPENAI_API_KEY`` or ``openai.api_key_file``;
    None when neither is set (local servers need none). Registered with the scrubber."""
    env = os.environ.get("OPENAI_API_KEY", "").strip()
    if env:
        return env
    return read_key_file(str(section.get("api_key_file") or ""), "openai.api_key_file")


def read_key_file(path_s: str, setting: str) -> str | None:
    """The key in the file ``path_s`` names (None when no file is set), refused unless
    private. Raises ConfigError naming ``setting`` for a missing, empty or
    group/other-readable file; the message never contains the key."""
    path_s = path_s.strip()
    if not path_s:
        return None
    path = Path(path_s).expanduser()
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(setting, f"{path} is readable by group or others; run: chmod 600 "
                          f"{path}")
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ConfigError(setting, f"{path} is empty")
    register(key)
    return key


# --------------------------------------------------------------------------- registry


def register(*values: str | None) -> None:
    """Make ``values`` known to the scrubber (and their URL-decoded forms)."""
    with _lock:
        for value in values:
            value = (value or "").strip()
            for form in {value, unquote(value)}:
                if len(form) >= MIN_SECRET:
                    _registered.add(form)


def url_password(url: str) -> str:
    """The password part of a URL ("" when none or the URL does not parse)."""
    try:
        return urlsplit(url.strip()).password or ""
    except ValueError:
        return ""


def register_config(config: Mapping[str, Mapping[str, Any]] | Any) -> None:
    """Register the secret settings of a config (a :class:`~daemon.config.Config` or
    its ``to_dict()``): the key files' keys, the proxy password, the Tor control and
    Webshare passwords. A key file that cannot be read registers nothing (the daemon
    reports that problem elsewhere)."""
    values = config.to_dict() if hasattr(config, "to_dict") else config
    yt = values.get("youtube", {})
    register(url_password(str(yt.get("proxy") or "")),
             str(yt.get("tor_control_password") or ""),
             str(yt.get("webshare_password") or ""))
    for load, section in ((load_api_key, "generate"), (load_openai_key, "openai")):
        try:
            load(values.get(section, {}))
        except (ConfigError, OSError, UnicodeDecodeError):
            pass


def known() -> list[str]:
    """Every secret the scrubber masks now, longest first (so a secret that contains
    another is masked whole)."""
    found = set()
    for name in KEY_ENV:
        value = os.environ.get(name, "").strip()
        if len(value) >= MIN_SECRET:
            found.add(value)
    for name in PROXY_ENV:
        password = url_password(os.environ.get(name, ""))
        for form in (password, unquote(password)):
            if len(form) >= MIN_SECRET:
                found.add(form)
    with _lock:
        found |= _registered
    return sorted(found, key=len, reverse=True)


# --------------------------------------------------------------------------- scrubbing


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every known secret (and ``extra``), every key-shaped string and
    every URL password replaced by ``***``. Idempotent."""
    if not text:
        return text
    more = [s for s in extra if s and len(s) >= MIN_SECRET]
    return _scrub(text, sorted(more, key=len, reverse=True) + known())


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _KEY_SHAPE.sub(lambda m: m.group(1) + MASK, text)
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)


def scrub_data(data: Any, _secrets: list[str] | None = None) -> Any:
    """A copy of JSON-like ``data`` (dicts, lists, strings) with every string scrubbed."""
    secrets = known() if _secrets is None else _secrets
    if isinstance(data, str):
        return _scrub(data, secrets) if data else data
    if isinstance(data, Mapping):
        return {k: scrub_data(v, secrets) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [scrub_data(v, secrets) for v in data]
    return data


class ScrubFilter(logging.Filter):
    """On a log handler: the record's message (arguments merged) and its traceback are
    scrubbed before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string still gets logged
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:  # formatters use exc_text when set
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


# --------------------------------------------------------------------------- regions


def region_secret(state_dir: Path) -> bytes:
    """The vault's region key (created once, 0600, in the state dir; never in the vault).

    Created atomically (a linked temp file), so two processes starting together agree.
    Losing the state dir loses the key: old notes then keep their Related lists but get
    no more back-links (safe: nothing is edited that cannot be proven ours).
    """
    path = Path(state_dir) / REGION_KEY_FILE
    with _lock:
        if path in _region_keys:
            return _region_keys[path]
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{REGION_KEY_FILE}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32).hex().encode())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        key = path.read_bytes().strip()
    if len(key) < 32:
        raise ConfigError(str(path), "the region key is damaged; delete the file and "
                          "restart (notes written so far get no more back-links)")
    with _lock:
        _region_keys[path] = key
    return key


def region_tag(state_dir: Path, owner: str) -> str:
    """The tag of the Related region of the note owned by ledger key ``owner``."""
    return related.region_tag(region_secret(state_dir), owner)
