"""YAML frontmatter that keeps its order and means what it says.

Round-trips through ruamel.yaml so user-added keys, their order and comments survive a
regeneration. python-frontmatter is not used for writing: it sorts keys and lets YAML 1.1
readers turn ``10:30`` into 630 and ``no`` into false. Here every string value that a
YAML 1.1 reader could misread is written double-quoted.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

_FENCE = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
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


def split(text: str) -> tuple[CommentedMap | None, str]:
    """Return (frontmatter mapping or None, body). Bad YAML counts as no frontmatter,
    and the whole text is returned as body so nothing is lost."""
    m = _FENCE.match(text)
    if not m:
        return None, text
    try:
        data = _yaml().load(m.group(1)) if m.group(1).strip() else CommentedMap()
    except YAMLError:
        return None, text
    if not isinstance(data, CommentedMap):
        return None, text
    return data, text[m.end():]


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
