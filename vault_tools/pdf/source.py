"""Cleaning a note's text before it is parsed, and reading its frontmatter.

Owns the boundary between an arbitrary file and the markdown parser: control characters
and NUL bytes are dropped, absurdly long lines are cut (with a warning) so one hostile
line cannot turn into a thousand pages, spaced-repetition scheduling comments
(``<!--SR:...-->``) and Obsidian ``%% comments %%`` (hidden in reading view, so
hidden on paper too) are removed outside code fences, and the YAML frontmatter is split
off and parsed into the fields the title block shows. Nothing here raises on bad input.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ruamel.yaml import YAML

MAX_LINE = 20_000
MAX_CHARS = 3_000_000

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_SR_RE = re.compile(r"[ \t]*<!--\s*SR:[^>]*?-->")
_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
MAX_INDENT = 64  # spaces; deeper list nesting is flattened onto this level
MAX_QUOTES = 24  # nested ">" markers kept
_DEEP_RE = re.compile(rf"^(?: {{{MAX_INDENT + 1},}}|(?:[ ]*>){{{MAX_QUOTES + 1},}})",
                      re.MULTILINE)
_DEEP_QUOTES_RE = re.compile(rf"^((?:[ ]*>){{{MAX_QUOTES}}})(?:[ ]*>)+")


@dataclass
class Frontmatter:
    data: dict[str, Any] = field(default_factory=dict)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None or isinstance(value, (dict, list)):
            return ""
        if isinstance(value, (date, datetime)):
            return value.isoformat()[:10]
        return str(value).strip()

    def tags(self) -> list[str]:
        value = self.data.get("tags")
        if isinstance(value, str):
            return [t for t in re.split(r"[,\s]+", value) if t]
        if isinstance(value, list):
            return [str(t) for t in value if t is not None]
        return []


def format_duration(value: Any) -> str:
    """Seconds (int, float or numeric string) as ``h:mm:ss``; other text unchanged."""
    try:
        total = int(float(str(value)))
    except (TypeError, ValueError):
        return str(value) if value not in (None, "") else ""
    if total < 0:
        return ""
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def sanitize(text: str, warnings: list[str]) -> str:
    """Drop control characters, normalise newlines and cut over-long lines."""
    if len(text) > MAX_CHARS:
        warnings.append(f"note is {len(text):,} characters; only the first "
                        f"{MAX_CHARS:,} are exported")
        text = text[:MAX_CHARS]
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text = _CONTROL_RE.sub("", text)
    if len(text) > MAX_LINE and any(len(line) > MAX_LINE for line in text.split("\n")):
        lines = []
        for line in text.split("\n"):
            if len(line) > MAX_LINE:
                warnings.append(f"a {len(line):,}-character line was cut to {MAX_LINE:,}")
                line = line[:MAX_LINE] + " […]"
            lines.append(line)
        text = "\n".join(lines)
    if _DEEP_RE.search(text):
        warnings.append("very deep nesting was flattened")
        text = "\n".join(_flatten(line) for line in text.split("\n"))
    return text


def _flatten(line: str) -> str:
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > MAX_INDENT:
        line = " " * MAX_INDENT + stripped
    return _DEEP_QUOTES_RE.sub(r"\1", line)


def strip_hidden(text: str) -> str:
    """Remove what Obsidian hides in reading view, outside fenced code: spaced-repetition
    scheduling comments (``<!--SR:...-->``) and ``%% comments %%``, which may span lines
    (an unclosed one hides the rest of the note, as in Obsidian)."""
    if "SR:" not in text and "%%" not in text:
        return text
    out: list[str] = []
    fence: str | None = None
    comment = False
    for line in text.split("\n"):
        match = None if comment else _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
        if fence is None and (comment or "SR:" in line or "%%" in line):
            original = line
            line = _SR_RE.sub("", line)
            line, comment = _drop_percent_comments(line, comment)
            if not line.strip() and original.strip():
                continue  # the line was only hidden text
        out.append(line)
    return "\n".join(out)


def _drop_percent_comments(line: str, inside: bool) -> tuple[str, bool]:
    """``line`` without its ``%%``-comment parts; whether a comment is still open."""
    kept: list[str] = []
    for i, part in enumerate(line.split("%%")):
        if i:
            inside = not inside
        if not inside:
            kept.append(part)
    return "".join(kept), inside


def split_frontmatter(text: str, warnings: list[str]) -> tuple[Frontmatter, str]:
    """``(frontmatter, body)``; a note without valid frontmatter gets an empty one."""
    if not text.startswith("---"):
        return Frontmatter(), text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return Frontmatter(), text
    for end in range(1, min(len(lines), 2000)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return Frontmatter(), text
    raw = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1:])
    try:
        data = YAML(typ="safe", pure=True).load(io.StringIO(raw))
    except Exception as exc:  # noqa: BLE001 - any YAML error: show the body anyway
        warnings.append(f"frontmatter is not valid YAML ({type(exc).__name__}); ignored")
        return Frontmatter(), body
    if not isinstance(data, dict):
        return Frontmatter(), body
    return Frontmatter({str(k): v for k, v in data.items()}), body
