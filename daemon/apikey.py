"""Where API keys come from: ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` or a 0600 key file.

Kept apart from the Claude client so the daemon can check the key at start (and
``status``/``doctor`` can tell whether there is one) without importing the SDK.
The key's value is never logged, printed or written anywhere.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError


def load_api_key(gen: dict[str, Any]) -> str | None:
    """The API key from the environment or the key file; None when neither is set.

    Raises ConfigError (naming ``generate.api_key_file``) for a missing, empty or
    group/other-readable key file. The message never contains the key.
    """
    env = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if env:
        return env
    return read_key_file(str(gen.get("api_key_file") or ""), "generate.api_key_file")


def read_key_file(path_s: str, setting: str) -> str | None:
    """The key in the file ``path_s`` names (None when empty), refused unless private.

    Raises ConfigError naming ``setting`` for a missing, empty or group/other-readable
    file. The message never contains the key."""
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
    return key


def load_openai_key(section: dict[str, Any]) -> str | None:
    """The OpenAI-compatible server's key: ``OPENAI_API_KEY`` or ``openai.api_key_file``;
    None when neither is set (local servers need none)."""
    env = os.environ.get("OPENAI_API_KEY", "").strip()
    if env:
        return env
    return read_key_file(str(section.get("api_key_file") or ""), "openai.api_key_file")
