"""The doctor check of the OpenAI-compatible endpoint (``generate.backend = "openai"``).

Owns one verdict, ``openai``: is the server at ``openai.base_url`` reachable, does it
serve ``openai.model`` (Ollama: ``GET /api/tags`` at the server root; any other server:
``GET <base_url>/models``), and which structured-output mode vaultd will ask it for.
A model Ollama lacks gets the ``ollama pull MODEL`` line as the fix. The key, if any, is
sent only to that server and recorded as a secret so the report never shows it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from daemon.doctor.model import Check, Context
from daemon.errors import ConfigError
from daemon.runner import resolve_backend
from daemon.secrets import load_openai_key

_MODES = {"auto": "json_schema (response_format with the JSON schema; vaultd steps down to "
                  "json_object, then the text format, if the server refuses it)",
          "json_schema": "json_schema (pinned by openai.structured_output)",
          "json_object": "json_object (pinned by openai.structured_output)",
          "text": "the tagged text format (pinned by openai.structured_output)"}


def _get(url: str, c: Context, headers: dict[str, str]) -> Any:
    resp = requests.get(url, timeout=c.timeout, headers=headers, allow_redirects=False)
    if resp.status_code != 200:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _served(model: str, names: list[str]) -> bool:
    return model in names or f"{model}:latest" in names or \
        (model.endswith(":latest") and model.removesuffix(":latest") in names)


def check_openai(c: Context) -> Check:
    if c.config is None:
        return Check("openai", "skip", "config did not load (see config)")
    try:
        backend = resolve_backend(c.config)[0]
    except ConfigError:
        backend = "?"
    if backend != "openai":
        return Check("openai", "skip", f"not used (backend is {backend})")
    section = c.config.section("openai")
    base, model = str(section["base_url"]).rstrip("/"), str(section["model"])
    local = urlsplit(base).hostname in ("127.0.0.1", "localhost", "::1")
    if not c.network and not local:
        return Check("openai", "skip", "network checks off (--no-network)")
    try:
        key = load_openai_key(section)
    except ConfigError as exc:
        return Check("openai", "fail", str(exc), "fix openai.api_key_file (chmod 600)")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if key:
        c.secrets.add(key)
    mode = _MODES[str(section.get("structured_output") or "auto")]
    root = base.removesuffix("/v1")
    try:
        tags = _get(f"{root}/api/tags", c, headers)
        if isinstance(tags, dict) and isinstance(tags.get("models"), list):
            names = [str(m.get("name") or m.get("model")) for m in tags["models"]
                     if isinstance(m, dict)]
            if not _served(model, names):
                return Check("openai", "fail", f"Ollama at {root} has no model {model} "
                             f"(it has: {', '.join(names) or 'none'})", f"ollama pull {model}")
            return Check("openai", "ok", f"Ollama at {root} serves {model}; replies as {mode}")
        listed = _get(f"{base}/models", c, headers)
    except requests.RequestException as exc:
        return Check("openai", "fail", f"{base} unreachable: {type(exc).__name__}",
                     "start the server (ollama serve, llama-server, LM Studio's server) or "
                     "fix openai.base_url")
    if not isinstance(listed, dict) or not isinstance(listed.get("data"), list):
        return Check("openai", "warn", f"{base} answered, but not with a model list; "
                     f"cannot tell whether it serves {model}", "check openai.base_url")
    ids = [str(m.get("id")) for m in listed["data"] if isinstance(m, dict)]
    if not _served(model, ids):
        return Check("openai", "fail", f"{base} does not serve {model} (it serves: "
                     f"{', '.join(ids) or 'nothing'})", f"load {model} in the server, or set "
                     f"openai.model to one it serves; for Ollama: ollama pull {model}")
    return Check("openai", "ok", f"{base} serves {model}; replies as {mode}")
