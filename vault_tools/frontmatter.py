"""YAML frontmatter that keeps its order and means what it says.

Round-trips through ruamel.yaml so user-added keys, their order and comments survive a
regeneration. python-frontmatter is not used for writing: it sorts keys and lets YAML 1.1
readers turn ``10:30`` into 630 and ``no`` into false. Here every string value that a
YAML 1.1 reader could misread is written double-quoted.

This module is the one place that knows where frontmatter ends (:func:`fence`). Two
readers share it: :func:`split` (ruamel round-trip, for text vaultd will write back) and
:func:`read` (PyYAML's C base loader, every scalar a string, for reading thousands of
notes quickly: the knowledge graph).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Mapping
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

# Opens on the first line (after an optional byte-order mark); closes with ``---`` (or
# YAML's ``...``) on a line of its own.
_FENCE = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?$\n?", re.S | re.M)
_PLAIN_SAFE = re.compile(r"^[A-Za-z_][\w .,'()/+-]*$")
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


_local = threading.local()  # one configured YAML per thread: building one is costly


def _yaml() -> YAML:
    y = getattr(_local, "yaml", None)
    if y is None:
        y = YAML(typ="rt")
        y.preserve_quotes = True
        y.width = 4096
        y.indent(mapping=2, sequence=4, offset=2)
        _local.yaml = y
    return y


def fence(text: str) -> tuple[str, str] | None:
    """(the YAML between the fences, the body after them), or None without frontmatter."""
    m = _FENCE.match(text)
    return (m.group(1), text[m.end():]) if m else None


def split(text: str) -> tuple[CommentedMap | None, str]:
    """Return (frontmatter mapping or None, body). Bad YAML counts as no frontmatter,
    and the whole text is returned as body so nothing is lost."""
    fenced = fence(text)
    if fenced is None:
        return None, text
    raw, body = fenced
    try:
        data = _yaml().load(raw) if raw.strip() else CommentedMap()
    except YAMLError:
        return None, text
    if not isinstance(data, CommentedMap):
        return None, text
    return data, body


# PyYAML's C base loader: every scalar stays a string (no YAML 1.1 guessing), ten times
# faster than ruamel's pure-Python reader (the graph reads every note of the vault), and
# a new loader per call, so it is safe from several threads.
_BaseLoader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


def read(text: str) -> tuple[dict[str, Any], str]:
    """Frontmatter as a dict of strings/lists (YAML base loader: no type guessing), and
    the body. Read-only: for text vaultd writes back, use :func:`split`. Bad YAML counts
    as empty frontmatter (the body is still the text after the fences)."""
    fenced = fence(text.lstrip("\ufeff"))
    if fenced is None:
        return {}, text.lstrip("\ufeff")
    raw, body = fenced
    try:
        data = yaml.load(raw, Loader=_BaseLoader)
    except (yaml.YAMLError, ValueError, IndexError, AttributeError, TypeError):
        data = None  # not valid YAML: the note still counts, without frontmatter
    return (data if isinstance(data, dict) else {}), body


def _quote(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, DoubleQuotedScalarString):
        if not _PLAIN_SAFE.match(value) or value.lower() in _YAML11_WORDS or value != \
                value.strip():
            return DoubleQuotedScalarString(value)
        return value
    if isinstance(value, list) and not isinstance(value, CommentedSeq):
        seq = CommentedSeq(_quote(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    if isinstance(value, Mapping) and not isinstance(value, CommentedMap):
        return CommentedMap((k, _quote(v)) for k, v in value.items())
    return value


def merge(existing: CommentedMap | None, ours: Mapping[str, Any]) -> CommentedMap:
    """Our keys updated in place (keeping the user's order), user keys untouched,
    new keys of ours appended in our order."""
    data = existing if existing is not None else CommentedMap()
    for key, value in ours.items():
        data[key] = _quote(value)
    return data


def dump(data: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    mapping = data if isinstance(data, CommentedMap) else merge(None, data)
    _yaml().dump(mapping, buf)
    return buf.getvalue()


def compose(data: Mapping[str, Any], body: str) -> str:
    """A whole note: ``---`` fenced frontmatter, then the body."""
    return f"---\n{dump(data)}---\n{body if body.startswith(chr(10)) else chr(10) + body}"


def plain(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Frontmatter as plain Python types (for comparisons and JSON)."""
    if data is None:
        return {}

    def conv(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, str):
            return str(v)
        return v

    return conv(data)
