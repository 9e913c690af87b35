"""The key that decides whether a note's PDF is out of date, without importing ReportLab.

The daemon's main process compares it with the digest of the last export; keeping it
here spares that process the PDF stack (tens of MB) which only the PDF pool needs.
The renderer version is part of the key, so an upgrade that changes the output
re-exports everything once.
"""

from __future__ import annotations

import hashlib

RENDERER_VERSION = "1"


def content_hash(markdown: str, theme: str) -> str:
    """Stable key for (note text, theme, renderer version)."""
    digest = hashlib.sha256()
    for part in (RENDERER_VERSION, theme, markdown):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()
