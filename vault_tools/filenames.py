"""Safe, stable file names from untrusted titles.

A name must work on Windows, macOS and Linux, inside Obsidian links, and in sync tools:
no path separators or ``..`` (never write outside the vault), none of ``\\/:*?"<>|`` or
Obsidian's link breakers ``#^[]``, no control or bidi-override characters, no Windows
reserved names, no trailing dots or spaces, and at most ``max_bytes`` UTF-8 bytes so a
suffix like `` (Assessment).md`` still fits the 255-byte limit of most filesystems.
"""

from __future__ import annotations

import re
import unicodedata

_FORBIDDEN = re.compile(r'[\\/:*?"<>|#^\[\]{}%`$~]')
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
    *(f"{dev}{i}" for dev in ("COM", "LPT") for i in (*"0123456789", "¹", "²", "³")),
}
_JOINERS = "\u200c\u200d"  # emoji sequences and Indic/Persian scripts need these
_BIDI = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                               "\u2066\u2067\u2068\u2069\u061c\ufeff"))


def safe_filename(title: str, *, max_bytes: int = 150, fallback: str = "Untitled") -> str:
    """Turn any title into a safe file stem (no extension)."""
    text = unicodedata.normalize("NFC", title or "").translate(_BIDI)
    text = "".join(c if c in _JOINERS or unicodedata.category(c)[0] != "C" else " "
                   for c in text)
    text = _FORBIDDEN.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip(" .-_")
    text = _truncate_utf8(text, max_bytes).rstrip(" .")
    while text.startswith("."):
        text = text[1:]
    if not text:
        text = fallback
    head, dot, rest = text.partition(".")
    if head.rstrip().upper() in _WINDOWS_RESERVED:  # NUL.txt is the NUL device too
        text = f"{head.rstrip()}_{dot}{rest}"
    return text


def _truncate_utf8(text: str, max_bytes: int) -> str:
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    out = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    # Do not leave a dangling combining mark, joiner or variation selector.
    while out and (unicodedata.combining(out[-1]) or out[-1] in "\u200d\ufe0f\ufe0e"):
        out = out[:-1]
    return out.rstrip()


def numbered(stem: str, n: int) -> str:
    """``stem`` for n == 1, else ``stem (n)``."""
    return stem if n <= 1 else f"{stem} ({n})"
