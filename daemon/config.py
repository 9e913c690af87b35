"""Per-vault configuration: ``<vault>/.vaultd/config.toml``.

The schema below is the single source of truth: it validates the file, supplies
defaults and renders the commented default file written on first run. Unknown
sections or keys and values of the wrong type raise :class:`ConfigError` naming
``section.key``, which the CLI turns into exit code 2.

To add a setting, add one ``Setting`` to ``SCHEMA``; nothing else needs to change.
Reading: ``config.get("youtube", "proxy")`` or ``config.section("youtube")["proxy"]``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daemon.errors import ConfigError
from vault_tools.pathgate import PathGate, PathRefused, clean_typed

CONFIG_RELPATH = Path(".vaultd") / "config.toml"


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    help: str
    kind: type | tuple[type, ...] | None = None  # defaults to type(default)
    check: Callable[[Any], str | None] | None = None  # returns a problem or None


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _at_least(low: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value >= low else f"must be at least {low}"

    return check


def _relative_path(value: Any) -> str | None:
    p = Path(value)
    if not value or p.is_absolute() or ".." in p.parts:
        return "must be a path inside the vault (relative, no '..')"
    try:
        clean_typed(value)
    except PathRefused as exc:
        return f"must be a path inside the vault ({exc.reason})"
    if "\\" in value:
        return "must be a path inside the vault (use / between folders, not \\)"
    return None


def _url(value: Any) -> str | None:
    # Checked here, not at the first request: a host-less, space-holding or bad-port URL
    # would otherwise start the daemon and fail every job with a connection error.
    text = str(value)
    if not text.startswith(("http://", "https://")):
        return "must be an http:// or https:// URL"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        return f"must be an http:// or https:// URL ({exc})"
    if not parts.hostname or any(c.isspace() for c in text):
        return "must be an http:// or https:// URL with a host name and no spaces"
    return None


def _str_list(value: Any) -> str | None:
    if not all(isinstance(v, str) for v in value):
        return "must be a list of strings"
    return None


SCHEMA: dict[str, list[Setting]] = {
    "vault": [
        Setting("inbox", "inbox.md", "Inbox file, relative to the vault.", check=_relative_path),
        Setting("notes_folder", "Study Notes", "Where study notes and assessments go.",
                check=_relative_path),
        Setting("pdf_folder", "PDF", "Where PDFs go (mirrors the note folders).",
                check=_relative_path),
        Setting("graph_note", "Knowledge Graph.md", "Knowledge graph note (a .canvas sits "
                "beside it).", check=_relative_path),
        Setting("allow_symlinks_out", False, "Follow symlinks inside the vault that point "
                "outside it (folders you link in on purpose). Off: such links are refused "
                "with a reason."),
    ],
    "daemon": [
        Setting("workers", 2, "Generation worker processes.", check=_at_least(1)),
        Setting("rescan_seconds", 30.0, "Full inbox rescan interval (watchers miss events).",
                kind=(int, float), check=_at_least(1)),
        Setting("debounce_seconds", 0.5, "Quiet time after an inbox change before reading it.",
                kind=(int, float), check=_at_least(0)),
        Setting("polling", False, "Poll the vault instead of OS file events (network or "
                "cloud-synced folders)."),
        Setting("max_attempts", 5, "Attempts for transient failures before a job fails.",
                check=_at_least(1)),
        Setting("backoff_base_seconds", 30.0, "First retry delay; doubles per attempt, "
                "with jitter.", kind=(int, float), check=_at_least(0)),
        Setting("backoff_max_seconds", 3600.0, "Longest retry delay.", kind=(int, float),
                check=_at_least(0)),
        Setting("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR.",
                check=_one_of("DEBUG", "INFO", "WARNING", "ERROR")),
    ],
    "generate": [
        Setting("backend", "auto", "auto (Claude when ANTHROPIC_API_KEY is set, else "
                "offline), offline, claude, or openai (any OpenAI-compatible server: Ollama, "
                "llama.cpp, LM Studio, vLLM, hosted; see [openai] and docs/models.md).",
                check=_one_of("auto", "offline", "claude", "openai")),
        Setting("language", "en", "Language of generated notes."),
        Setting("model", "claude-sonnet-5-5", "Claude model for notes and assessments."),
        Setting("small_model", "claude-haiku-5-5", "Cheaper model for small tasks."),
        Setting("max_tokens", 8000, "Output token limit per call.", check=_at_least(256)),
        Setting("daily_token_budget", 0, "Pause work after this many tokens a day (0: no "
                "limit).", check=_at_least(0)),
        Setting("max_concurrent_requests", 0, "Model calls in flight across all workers "
                "(0: one per worker).", check=_at_least(0)),
        Setting("batch_poll_seconds", 60.0, "How often `vaultd run --batch` asks whether "
                "the batch has ended.", kind=(int, float), check=_at_least(0.05)),
        Setting("api_key_file", "", "File holding the API key (mode 0600), used when "
                "ANTHROPIC_API_KEY is unset."),
        Setting("context_budget_tokens", 100000, "Transcripts longer than this (estimated "
                "tokens) are summarised in parts, then merged.", check=_at_least(1000)),
        Setting("retry_attempts", 4, "Tries of one Claude call on 429/529/5xx/network errors "
                "before the job waits for a later retry.", check=_at_least(1)),
        Setting("retry_max_wait_seconds", 60.0, "Longest wait between those tries "
                "(retry-after is honoured up to this).", kind=(int, float), check=_at_least(0)),
        Setting("request_timeout_seconds", 600.0, "Timeout of one Claude request.",
                kind=(int, float), check=_at_least(1)),
    ],
    "openai": [
        Setting("base_url", "http://127.0.0.1:11434/v1", "OpenAI-compatible endpoint "
                "(default: Ollama on this machine).", check=_url),
        Setting("model", "llama3.1:8b", "Model name as the server knows it."),
        Setting("api_key_file", "", "File holding the API key (mode 0600), used when "
                "OPENAI_API_KEY is unset; local servers need no key."),
        Setting("context_window_tokens", 8192, "The model's context window as the server "
                "runs it; longer transcripts are summarised in parts.", check=_at_least(2048)),
        Setting("max_output_tokens", 2048, "Output token limit per call (a cut reply is "
                "continued).", check=_at_least(256)),
        Setting("request_timeout_seconds", 600.0, "Timeout of one request.",
                kind=(int, float), check=_at_least(1)),
        Setting("concurrency", 1, "Requests in flight across all workers (a local server "
                "answers one at a time).", check=_at_least(1)),
        Setting("structured_output", "auto", "auto (json_schema, stepping down when the "
                "server refuses it), json_schema, json_object or text.",
                check=_one_of("auto", "json_schema", "json_object", "text")),
        Setting("input_price_per_mtok", 0.0, "USD per million input tokens (0: free).",
                kind=(int, float), check=_at_least(0)),
        Setting("output_price_per_mtok", 0.0, "USD per million output tokens (0: free).",
                kind=(int, float), check=_at_least(0)),
    ],
    "youtube": [
        Setting("languages", ["en"], "Preferred transcript languages, in order.",
                kind=list, check=_str_list),
        Setting("prefer_manual", True, "Prefer manually created captions over generated."),
        Setting("translate", False, "Translate captions to generate.language when needed."),
        Setting("proxy", "", "Proxy URL for YouTube (http://, https://, socks5h://). Empty: "
                "HTTPS_PROXY from the environment applies."),
        Setting("tor_control_port", 0, "Tor control port for a new circuit between retries "
                "(0: off).", check=_at_least(0)),
        Setting("tor_control_password", "", "Tor control port password."),
        Setting("webshare_username", "", "Webshare rotating proxy user (empty: off)."),
        Setting("webshare_password", "", "Webshare rotating proxy password."),
        Setting("min_request_interval_seconds", 2.0, "Least time between two videos' "
                "requests to YouTube once the burst is used, jittered (a video's own "
                "requests go back to back).", kind=(int, float), check=_at_least(0)),
        Setting("burst_videos", 5, "Videos that may be fetched one right after another "
                "before the interval applies (all workers together).", check=_at_least(1)),
        Setting("yt_dlp_fallback", False, "Try yt-dlp for captions when the API fails."),
        Setting("yt_dlp_playlists", True, "Expand playlists with yt-dlp when it is installed "
                "(pip install 'vaultd[ytdlp]'); else from the playlist page."),
        Setting("any_language", True, "When none of `languages` exists, use the video's own "
                "subtitles (manual first) instead of failing."),
        Setting("request_budget_per_hour", 600, "Most requests to one YouTube host per hour, "
                "all workers together; over it jobs wait (0: no limit).", check=_at_least(0)),
        Setting("timeout_seconds", 20.0, "Network timeout for one YouTube request.",
                kind=(int, float), check=_at_least(1)),
        Setting("min_transcript_words", 10, "Any source (video, subtitle file, recording) "
                "whose transcript has fewer words fails as empty; "
                "nothing is sent to the model.", check=_at_least(0)),
    ],
    "pdf": [
        Setting("enabled", True, "Export notes and assessments to PDF."),
        Setting("theme", "default", "default or print.", check=_one_of("default", "print")),
        Setting("refresh_after_seconds", 10.0, "Re-export a note's PDF once the note (edited "
                "by you or given a Related link) has been left alone this long; 0 never "
                "re-exports edited notes.", kind=(int, float), check=_at_least(0)),
    ],
    "subscriptions": [
        Setting("channels", [], "YouTube channel ids (UC...) to follow.", kind=list,
                check=_str_list),
        Setting("playlists", [], "YouTube playlist ids to follow.", kind=list, check=_str_list),
        Setting("poll_minutes", 60, "How often to poll followed feeds.", check=_at_least(5)),
        Setting("podcasts", [], "Podcast RSS/Atom feed URLs to follow; new episodes are "
                "added to the inbox and transcribed (needs [transcribe]).", kind=list,
                check=_str_list),
    ],
    "transcribe": [
        Setting("engine", "off", "Speech to text for audio/video files and caption-less "
                "videos: off, faster-whisper (local; pip install 'vaultd[whisper]') or openai "
                "(an OpenAI-compatible /v1/audio/transcriptions server at base_url).",
                check=_one_of("off", "faster-whisper", "openai")),
        Setting("model", "small", "Whisper size name (tiny, base, small, medium, large-v3; "
                "downloaded once on first use) or a local model folder; for openai, the "
                "server's model name."),
        Setting("base_url", "", "openai engine: server URL ending in /v1."),
        Setting("device", "auto", "faster-whisper: auto, cpu or cuda.",
                check=_one_of("auto", "cpu", "cuda")),
        Setting("compute_type", "auto", "faster-whisper: auto (int8 on CPU), int8, "
                "float16, float32..."),
        Setting("language", "auto", "Spoken language code, or auto to detect it."),
        Setting("vad", True, "Skip silence with voice activity detection (faster-whisper)."),
        Setting("workers", 1, "Transcription processes (CPU-heavy; separate from "
                "daemon.workers).", check=_at_least(1)),
        Setting("max_hours", 12.0, "Longer recordings fail with a plain reason.",
                kind=(int, float), check=_at_least(0)),
        Setting("timeout_seconds", 600.0, "openai engine: timeout of one request (one "
                "5-minute chunk).", kind=(int, float), check=_at_least(1)),
    ],
    "topics": [
        Setting("enabled", True, "Maintain a topic note per topic cluster with at least two "
                "study notes from different sources."),
        Setting("folder", "Topics", "Where topic notes go.", check=_relative_path),
        Setting("debounce_seconds", 30.0, "Quiet time after the graph changes before topic "
                "notes are refreshed.", kind=(int, float), check=_at_least(0)),
        Setting("daily_token_cap", 50000, "Most model tokens a day for topic synthesis (claude "
                "or openai backend); over it topics are extractive until tomorrow; 0: never "
                "synthesise.",
                check=_at_least(0)),
    ],
    "review": [
        Setting("enabled", True, "Write a weekly review note (at start, and at the first "
                "look of each new ISO week)."),
        Setting("folder", "Review", "Where weekly review notes go (named by ISO week, e.g. "
                "2026-W49.md).", check=_relative_path),
    ],
}


@dataclass
class Config:
    """Validated settings of one vault, plus where they came from."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    def section(self, section: str) -> dict[str, Any]:
        return dict(self.values[section])

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {s: dict(v) for s, v in self.values.items()}

    @classmethod
    def defaults(cls) -> Config:
        return cls({s: {st.key: st.default for st in settings}
                    for s, settings in SCHEMA.items()})


# What a running daemon cannot change on SIGHUP: these fix the vault's layout (where the
# inbox, notes and graph note are watched and indexed), the backend its worker fork
# server preloads, and the size of its process pools, at start. Every other setting
# takes effect on reload; the reload log line names any of these that changed.
RESTART_SETTINGS = ("vault.inbox", "vault.notes_folder", "vault.graph_note",
                    "daemon.workers", "generate.backend", "transcribe.workers")


def changed_settings(old: Config, new: Config) -> list[str]:
    """``section.key`` of every setting whose value differs between two configs."""
    return [f"{s}.{k}" for s, table in new.values.items() for k, v in table.items()
            if old.values.get(s, {}).get(k) != v]


_KIND_WORDS: dict[Any, str] = {int: "an integer", float: "a number", str: "a string",
                               bool: "true or false", list: "a list"}


def _validate(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    values = Config.defaults().values
    for section, table in raw.items():
        if section not in SCHEMA:
            raise ConfigError(section, f"unknown section (known: {', '.join(SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(section, "must be a [section] table")
        known = {s.key: s for s in SCHEMA[section]}
        for key, value in table.items():
            name = f"{section}.{key}"
            if key not in known:
                raise ConfigError(name, f"unknown setting (known: {', '.join(known)})")
            setting = known[key]
            kind = setting.kind or type(setting.default)
            ok = isinstance(value, kind) and not (
                isinstance(value, bool) and kind in (int, float, (int, float))
            )
            if not ok:
                expected = _KIND_WORDS.get(kind, "a number")
                raise ConfigError(name, f"must be {expected}, got {value!r}")
            if setting.check and (problem := setting.check(value)):
                raise ConfigError(name, f"{problem}, got {value!r}")
            values[section][key] = value
    return values


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def render_default_config() -> str:
    """The commented default file: every setting, commented out at its default."""
    lines = [
        "# vaultd configuration for this vault.",
        "# Every setting is shown at its default, commented out. Uncomment to change.",
        "# Reference: docs/configuration.md",
        "",
    ]
    for section, settings in SCHEMA.items():
        lines.append(f"[{section}]")
        for s in settings:
            lines.append(f"# {s.help}")
            lines.append(f"# {s.key} = {_toml_value(s.default)}")
        lines.append("")
    return "\n".join(lines)


def load_config(vault: Path, *, create: bool = True) -> Config:
    """Read (and on first run, write) ``<vault>/.vaultd/config.toml``.

    Raises ConfigError for unreadable TOML, unknown keys or bad values.
    """
    path = vault / CONFIG_RELPATH
    # Through the path gate: a .vaultd folder (or file) that is a symlink out of the vault
    # is refused. vault.allow_symlinks_out cannot apply here: it is read from this file.
    gate = PathGate(vault)
    try:
        data = gate.read_bytes(CONFIG_RELPATH, 1 << 20)
    except FileNotFoundError:
        if create:
            try:
                gate.write(CONFIG_RELPATH, render_default_config(), create_only=True)
            except FileExistsError:
                pass  # written this instant by someone else: the defaults apply now
            except PathRefused as exc:
                raise ConfigError(str(path), exc.reason) from None
        return Config(Config.defaults().values, path)
    except PathRefused as exc:
        raise ConfigError(str(path), exc.reason) from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return Config(_validate(raw), path)


def render_reference() -> str:
    """docs/configuration.md: every setting with its default and meaning."""
    out = [
        "# Configuration reference",
        "",
        "vaultd reads `<vault>/.vaultd/config.toml`. On first run it writes the file with",
        "every setting commented out at its default; uncomment a line to change it. Unknown",
        "sections or keys and values of the wrong type stop vaultd with exit code 2 and a",
        "message naming the setting (`config: daemon.workers: must be at least 1, got 0`).",
        "A running daemon re-reads the file on SIGHUP (`systemctl --user reload ...`).",
        "Every setting takes effect then, except "
        + ", ".join(f"`{name}`" for name in RESTART_SETTINGS) + ":",
        "they need a restart (the reload's log line names them when they changed).",
        "A new `topics.folder` or `review.folder` receives the notes made from then on;",
        "notes already written stay where they are.",
        "",
        "Environment: `ANTHROPIC_API_KEY` (Claude backend), `ANTHROPIC_BASE_URL`,",
        "`OPENAI_API_KEY` (openai backend, optional for local servers),",
        "`HTTPS_PROXY`/`REQUESTS_CA_BUNDLE` (used for YouTube when `youtube.proxy` is empty),",
        "`VAULTD_STATE_DIR` / `STATE_DIRECTORY` / XDG (where the ledger and caches live).",
        "",
        "This file is generated from the schema in `daemon/config.py`",
        "(`python -m daemon.config > docs/configuration.md`).",
        "",
    ]
    for section, settings in SCHEMA.items():
        out += [f"## [{section}]", "", "| setting | default | meaning |", "| --- | --- | --- |"]
        for s in settings:
            default = _toml_value(s.default).replace("|", "\\|")
            out.append(f"| `{s.key}` | `{default}` | {s.help.replace('|', '/')} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render_reference(), end="")
