"""Font discovery and registration for the PDF exporter.

Owns which faces a PDF uses: a serif, a sans and a monospace family (DejaVu, each with
bold/italic variants) found in the usual system font folders or in matplotlib's bundled
copy, plus optional TrueType faces for Chinese/Japanese/Korean runs and for symbol
marks such as ✅ ❌ (Symbola, Noto Sans Symbols 2, Segoe UI Symbol). When no
DejaVu is found it falls back to ReportLab's built-in Times/Helvetica/Courier with a
warning instead of failing. It also knows which code points each face covers, so the
inline renderer can switch faces per character and report glyphs that no face has.

ReportLab's font registry is process-global, so registration is cached per set of
search folders; registering the same face twice is cheap and harmless.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

# name -> (regular, bold, italic, bold italic) file names, DejaVu first then look-alikes.
_FAMILIES: dict[str, list[tuple[str, str, str, str]]] = {
    "serif": [
        ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
         "DejaVuSerif-BoldItalic.ttf"),
        ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf",
         "LiberationSerif-Italic.ttf", "LiberationSerif-BoldItalic.ttf"),
    ],
    "sans": [
        ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
         "DejaVuSans-BoldOblique.ttf"),
        ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
         "LiberationSans-Italic.ttf", "LiberationSans-BoldItalic.ttf"),
    ],
    "mono": [
        ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
         "DejaVuSansMono-BoldOblique.ttf"),
        ("LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf",
         "LiberationMono-Italic.ttf", "LiberationMono-BoldItalic.ttf"),
    ],
}

_BUILTIN = {"serif": "Times-Roman", "sans": "Helvetica", "mono": "Courier"}

# TrueType-outline CJK faces, most complete first. OpenType/CFF files (most Noto CJK
# builds) are tried too but ReportLab rejects them; we then move on to the next one.
_CJK_CANDIDATES = (
    "NotoSansCJK-Regular.ttc", "NotoSansCJKjp-Regular.otf", "NotoSansJP-Regular.ttf",
    "NotoSansCJKsc-Regular.otf", "DroidSansFallbackFull.ttf", "DroidSansFallback.ttf",
    "wqy-microhei.ttc", "wqy-zenhei.ttc", "ipagp.ttf", "ipag.ttf", "ipaexg.ttf",
    "TakaoPGothic.ttf", "VL-PGothic-Regular.ttf", "UnifontExMono.ttf",
    "Arial Unicode.ttf", "arialuni.ttf", "msgothic.ttc", "msyh.ttc", "simsun.ttc",
    "unifont.ttf",
)

# Faces with the emoji-style marks notes use (✅ ❌ ☑ …), which DejaVu lacks. Colour
# emoji fonts (bitmap tables) are useless to ReportLab; these have outlines.
_SYMBOL_CANDIDATES = (
    "Symbola.ttf", "Symbola_hint.ttf", "NotoSansSymbols2-Regular.ttf",
    "NotoEmoji-Regular.ttf", "seguisym.ttf", "seguiemj.ttf", "Apple Symbols.ttf",
)
_SYMBOL_PROBES = (0x2705, 0x274C)  # ✅ ❌: a symbol face must have at least one

_FONT_SUFFIXES = (".ttf", ".ttc", ".otf")
_MAX_FILES = 20_000  # stop indexing absurdly large font trees

# Code points the built-in Type 1 fonts can show (WinAnsi / cp1252).
_WINANSI = frozenset(
    ord(ch) for ch in bytes(range(32, 256)).decode("cp1252", errors="ignore")
)


@dataclass(frozen=True)
class FontSet:
    """Registered font names for one export, plus what each face can display."""

    serif: str
    sans: str
    mono: str
    cjk: str | None
    truetype: bool
    coverage: dict[str, frozenset[int]] = field(default_factory=dict, compare=False)
    warnings: tuple[str, ...] = ()
    symbols: str | None = None  # a face for ✅ ❌ and friends, when one is installed

    def covers(self, font: str, codepoint: int) -> bool:
        return codepoint in self.coverage.get(font, _WINANSI)


def default_font_dirs() -> list[Path]:
    """Folders searched when the caller gives none, most specific first."""
    home = Path.home()
    dirs = [
        home / ".fonts",
        home / ".local/share/fonts",
        Path("/usr/local/share/fonts"),
        Path("/usr/share/fonts"),
        home / "Library/Fonts",
        Path("/Library/Fonts"),
        Path("/System/Library/Fonts"),
        Path("/System/Library/Fonts/Supplemental"),
    ]
    windir = os.environ.get("WINDIR")
    if windir:
        dirs.append(Path(windir) / "Fonts")
    mpl = _matplotlib_font_dir()
    if mpl is not None:
        dirs.append(mpl)
    return dirs


def _matplotlib_font_dir() -> Path | None:
    """matplotlib ships DejaVu; find its folder without importing matplotlib."""
    try:
        spec = importlib.util.find_spec("matplotlib")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        candidate = Path(base) / "mpl-data" / "fonts" / "ttf"
        if candidate.is_dir():
            return candidate
    return None


def _index(dirs: Iterable[Path]) -> dict[str, Path]:
    """Lower-cased file name -> first path found, walking each folder recursively."""
    found: dict[str, Path] = {}
    seen = 0
    for root in dirs:
        if not root.is_dir():
            continue
        for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
            for name in filenames:
                if name.lower().endswith(_FONT_SUFFIXES):
                    found.setdefault(name.lower(), Path(dirpath) / name)
                    seen += 1
            if seen > _MAX_FILES:
                return found
    return found


def _register(name: str, path: Path, subfont: int = 0) -> frozenset[int] | None:
    """Register one TrueType face under ``name``; None if ReportLab cannot use it."""
    try:
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=subfont))
        font = pdfmetrics.getFont(name)
        return frozenset(font.face.charToGlyph)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any unreadable/unsupported font means "skip it"
        return None


def _safe_name(prefix: str, path: Path) -> str:
    stem = "".join(c if c.isalnum() else "-" for c in path.stem)
    return f"vd-{prefix}-{stem}"


def _register_family(
    kind: str, index: dict[str, Path], coverage: dict[str, frozenset[int]]
) -> str | None:
    for files in _FAMILIES[kind]:
        regular = index.get(files[0].lower())
        if regular is None:
            continue
        base = _safe_name(kind, regular)
        cov = _register(base, regular)
        if cov is None:
            continue
        coverage[base] = cov
        names = [base]
        for suffix, fname in zip(("b", "i", "bi"), files[1:], strict=True):
            path = index.get(fname.lower())
            variant = f"{base}-{suffix}"
            if path is not None and _register(variant, path) is not None:
                names.append(variant)
            else:
                names.append(base)
        _map_family(base, names[1], names[2], names[3])
        return base
    return None


def _map_family(base: str, bold: str, italic: str, bold_italic: str) -> None:
    addMapping(base, 0, 0, base)
    addMapping(base, 1, 0, bold)
    addMapping(base, 0, 1, italic)
    addMapping(base, 1, 1, bold_italic)


def _register_cjk(
    index: dict[str, Path], coverage: dict[str, frozenset[int]]
) -> str | None:
    for fname in _CJK_CANDIDATES:
        path = index.get(fname.lower())
        if path is None:
            continue
        name = _safe_name("cjk", path)
        cov = _register(name, path)
        if cov is None or 0x65E5 not in cov:  # must at least have 日
            continue
        coverage[name] = cov
        _map_family(name, name, name, name)
        return name
    return None


def _register_symbols(
    index: dict[str, Path], coverage: dict[str, frozenset[int]]
) -> str | None:
    for fname in _SYMBOL_CANDIDATES:
        path = index.get(fname.lower())
        if path is None:
            continue
        name = _safe_name("sym", path)
        cov = _register(name, path)
        if cov is None or not any(cp in cov for cp in _SYMBOL_PROBES):
            continue
        coverage[name] = cov
        _map_family(name, name, name, name)
        return name
    return None


@lru_cache(maxsize=8)
def _load(dirs: tuple[Path, ...]) -> FontSet:
    index = _index(dirs)
    coverage: dict[str, frozenset[int]] = {}
    warnings: list[str] = []
    names: dict[str, str] = {}
    truetype = True
    for kind in ("serif", "sans", "mono"):
        registered = _register_family(kind, index, coverage)
        if registered is None:
            truetype = False
            names[kind] = _BUILTIN[kind]
            coverage[_BUILTIN[kind]] = _WINANSI
        else:
            names[kind] = registered
    if not truetype:
        warnings.append(
            "DejaVu fonts not found (install fonts-dejavu or matplotlib); using "
            "ReportLab's built-in fonts, which only cover Western European characters"
        )
    cjk = _register_cjk(index, coverage)
    symbols = _register_symbols(index, coverage)
    return FontSet(
        serif=names["serif"],
        sans=names["sans"],
        mono=names["mono"],
        cjk=cjk,
        truetype=truetype,
        coverage=coverage,
        warnings=tuple(warnings),
        symbols=symbols,
    )


def load_fonts(font_dirs: Sequence[Path] | None = None) -> FontSet:
    """Find and register fonts; ``font_dirs`` replaces the default search folders."""
    dirs = default_font_dirs() if font_dirs is None else list(font_dirs)
    return _load(tuple(Path(d) for d in dirs))
