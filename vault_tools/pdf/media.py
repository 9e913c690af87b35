"""Helper flowables and vault image lookup for the PDF exporter.

Owns two small things the block renderer needs: :class:`Indented`, a wrapper that shifts
any flowable right (used for list nesting, so lists work inside table-based callouts
where frame indenters do not), and :class:`ImageResolver`, which finds an embedded
image the way Obsidian does (next to the note, from the vault root, or by file name
anywhere in the vault) without ever leaving the vault or touching the network.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import unquote

from reportlab.lib.colors import Color
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable, Image

from vault_tools.pathgate import PathGate, PathRefused

_MAX_INDEX = 50_000
_MAX_IMAGE_BYTES = 64 * 1024 * 1024


class Indented(Flowable):
    """Draw ``child`` ``indent`` points to the right; splits and spacing delegate."""

    def __init__(self, child: Flowable, indent: float) -> None:
        super().__init__()
        self.child = child
        self.indent = indent

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        w, h = self.child.wrap(max(availWidth - self.indent, 24.0), availHeight)
        self.width, self.height = w + self.indent, h
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
        parts = self.child.split(max(availWidth - self.indent, 24.0), availHeight)
        return [Indented(p, self.indent) for p in parts]

    def draw(self) -> None:
        self.child.drawOn(self.canv, self.indent, 0)

    def getSpaceBefore(self) -> float:  # noqa: N802 - ReportLab API
        return float(self.child.getSpaceBefore())

    def getSpaceAfter(self) -> float:  # noqa: N802 - ReportLab API
        return float(self.child.getSpaceAfter())

    def getKeepWithNext(self) -> bool:  # noqa: N802 - ReportLab API
        return bool(self.child.getKeepWithNext())

    def identity(self, maxLen: int | None = None) -> str:  # noqa: N803
        return f"Indented({self.indent}, {self.child.identity(maxLen)})"


class ImageResolver:
    """Find vault images for one note; remembers a name index once built."""

    def __init__(self, vault_root: Path | None, note_path: Path | None) -> None:
        self.vault_root = vault_root.resolve() if vault_root is not None else None
        # Inside a vault every image is found and read through the path gate.
        self.gate = PathGate(self.vault_root) if self.vault_root is not None else None
        note_dir: Path | None = None
        if note_path is not None:
            note_dir = note_path.parent
            if not note_dir.is_absolute() and self.vault_root is not None:
                note_dir = self.vault_root / note_dir
        self.note_dir = note_dir
        self._index: dict[str, Path] | None = None

    def _inside(self, path: Path) -> bool:
        if self.gate is None:
            return True
        try:
            self.gate.relative(path)
        except PathRefused:
            return False
        return self.gate.is_file(path)  # a regular file, reached by the gate's rule

    def _by_name(self, name: str) -> Path | None:
        if self.vault_root is None:
            return None
        if self._index is None:
            self._index = {}
            count = 0
            for dirpath, dirnames, filenames in os.walk(self.vault_root):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for fname in filenames:
                    self._index.setdefault(fname.lower(), Path(dirpath) / fname)
                count += len(filenames)
                if count > _MAX_INDEX:
                    break
        return self._index.get(name.lower())

    def resolve(self, target: str, wiki: bool) -> Path | None:
        target = target.strip()
        if not target or "://" in target or "\x00" in target:
            return None
        if not wiki:
            target = unquote(target)
        target = target.lstrip("/") if self.vault_root is not None else target
        candidates = []
        if self.note_dir is not None:
            candidates.append(self.note_dir / target)
        if self.vault_root is not None:
            candidates.append(self.vault_root / target)
        for cand in candidates:
            try:
                if self._inside(cand) and (self.gate is not None or cand.is_file()):
                    return cand
            except OSError:
                continue
        found = self._by_name(Path(target).name)
        return found if found is not None and self._inside(found) else None


    def read(self, path: Path) -> bytes:
        """The image's bytes, through the gate inside a vault (never a symlink out, a
        FIFO or a device; at most 64 MB)."""
        if self.gate is not None:
            return self.gate.read_bytes(path, _MAX_IMAGE_BYTES)
        with open(path, "rb") as fh:  # no vault: a path the caller chose (vaultd pdf)
            return fh.read(_MAX_IMAGE_BYTES)


def image_flowable(path: Path | bytes, max_width: float, max_height: float,
                   width: float | None = None) -> Image:
    """An Image scaled to fit ``max_width`` x ``max_height`` (never enlarged past 100%).
    ``path`` may be the image's bytes (as read through the path gate)."""
    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    iw, ih = ImageReader(source).getSize()
    if iw <= 0 or ih <= 0:
        raise ValueError("image has no size")
    w = width if width is not None else iw * 0.75  # pixels at 96 dpi -> points
    w = min(w, max_width)
    h = w * ih / iw
    if h > max_height:
        h = max_height
        w = h * iw / ih
    img = Image(io.BytesIO(path) if isinstance(path, bytes) else str(path), width=w, height=h)
    img.hAlign = "CENTER"
    return img


class Boxed(Flowable):
    """Children stacked in a tinted box with an optional left bar and outline.

    Used for callouts, quotes, code and flashcards instead of a one-cell Table: it
    splits between children and inside any child that can split (a long paragraph or
    code block), so a box longer than a page flows on, where ReportLab tables cannot.
    """

    def __init__(self, children: list[Flowable], *, bg: Color | None, bar: Color | None,
                 bar_width: float = 2.5, border: Color | None = None,
                 pad: tuple[float, float, float, float] = (6, 9, 5, 11),
                 first: bool = True, last: bool = True,
                 _sizes: dict[tuple[int, float], tuple[Flowable, float]] | None = None) -> None:
        super().__init__()
        self.children = children
        # child heights by (id, width), shared with the parts this box splits into, so
        # a box spanning many pages does not re-measure every child on every page
        self._sizes = _sizes if _sizes is not None else {}
        self.bg, self.bar, self.bar_width, self.border = bg, bar, bar_width, border
        self.pad = pad  # top, right, bottom, left
        self.first, self.last = first, last
        self._layout: list[tuple[Flowable, float, float]] = []  # child, y offset, height

    def _pads(self) -> tuple[float, float]:
        top, _, bottom, _ = self.pad
        return (top if self.first else 3.0), (bottom if self.last else 3.0)

    def _inner(self, avail_width: float) -> float:
        return max(avail_width - self.pad[1] - self.pad[3], 24.0)

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        inner = self._inner(availWidth)
        top, bottom = self._pads()
        y = top
        layout = []
        prev_after = 0.0
        for i, child in enumerate(self.children):
            h = self._height(child, inner)
            if i:
                y += max(prev_after, child.getSpaceBefore())
            layout.append((child, y, h))
            y += h
            prev_after = child.getSpaceAfter()
        self._layout = layout
        self.width, self.height = availWidth, y + bottom
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
        inner = self._inner(availWidth)
        top, _ = self._pads()
        y = top
        placed: list[Flowable] = []
        prev_after = 0.0
        for i, child in enumerate(self.children):
            gap = max(prev_after, child.getSpaceBefore()) if i else 0.0
            room = availHeight - y - gap - 3.0
            h = self._height(child, inner)
            if h <= room:
                placed.append(child)
                y += gap + h
                prev_after = child.getSpaceAfter()
                continue
            parts = child.split(inner, room) if room > 12 else []
            self._sizes.pop((id(child), inner), None)  # split may drop its layout
            if len(parts) >= 2:
                placed.append(parts[0])
                rest = list(parts[1:]) + self.children[i + 1:]
            else:
                rest = self.children[i:]
            if not placed:
                return []
            return [self._part(placed, self.first, False), self._part(rest, False, self.last)]
        return [self]

    def _height(self, child: Flowable, width: float) -> float:
        key = (id(child), width)
        cached = self._sizes.get(key)
        if cached is None:
            # the entry holds the child so its id cannot be reused by a new object
            cached = (child, child.wrap(width, 1e7)[1])
            self._sizes[key] = cached
        return cached[1]

    def _part(self, children: list[Flowable], first: bool, last: bool) -> Boxed:
        return Boxed(children, bg=self.bg, bar=self.bar, bar_width=self.bar_width,
                     border=self.border, pad=self.pad, first=first, last=last,
                     _sizes=self._sizes)

    def draw(self) -> None:
        canv = self.canv
        canv.saveState()
        if self.bg is not None:
            canv.setFillColor(self.bg)
            canv.rect(0, 0, self.width, self.height, stroke=0, fill=1)
        if self.border is not None:
            canv.setStrokeColor(self.border)
            canv.setLineWidth(0.6)
            canv.line(0, 0, 0, self.height)
            canv.line(self.width, 0, self.width, self.height)
            if self.first:
                canv.line(0, self.height, self.width, self.height)
            if self.last:
                canv.line(0, 0, self.width, 0)
        if self.bar is not None:
            canv.setFillColor(self.bar)
            canv.rect(0, 0, self.bar_width, self.height, stroke=0, fill=1)
        canv.restoreState()
        for child, y, h in self._layout:
            child.drawOn(canv, self.pad[3], self.height - y - h)
