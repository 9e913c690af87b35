"""Markdown note -> typeset PDF handout (pure: no threads, no network, no daemon).

Public API:

* :func:`export_pdf` renders one whole note file (frontmatter included) to ``out_path``,
  written atomically, and returns a :class:`PdfReport` (page count and warnings such as
  missing glyphs, missing images or content that had to be cut).
* :func:`content_hash` is the key the daemon stores to skip re-exporting a note whose
  text and theme did not change (it includes the renderer version, so upgrades that
  change the output re-export everything once).

The pipeline: :mod:`.source` cleans the text and splits the frontmatter,
markdown-it-py parses it, :mod:`.blocks`/:mod:`.inline`/:mod:`.tables` turn the tree
into ReportLab flowables with fonts from :mod:`.fonts` and a theme from :mod:`.styles`,
and :mod:`.document` lays out pages. Rendering problems degrade (plain text, cut
tables) and are reported as warnings; only failing to write ``out_path`` raises.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from reportlab.platypus import Flowable, Paragraph

from vault_tools.pdfhash import RENDERER_VERSION, content_hash  # noqa: F401 - re-exported

from .blocks import BlockRenderer
from .document import FRAME_HEIGHT, FRAME_WIDTH, build_pdf, title_block, title_info
from .fonts import FontSet, load_fonts
from .inline import InlineContext, hex_color
from .media import ImageResolver
from .source import sanitize, split_frontmatter, strip_hidden
from .styles import THEMES, get_theme, make_styles

__all__ = ["PdfReport", "THEMES", "content_hash", "export_pdf", "load_fonts", "FontSet"]

_MAX_MISSING_LISTED = 20


@dataclass
class PdfReport:
    pages: int
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "maxNesting": 100})
    return md.enable(["table", "strikethrough"])


def export_pdf(
    markdown: str,
    out_path: Path,
    *,
    vault_root: Path | None = None,
    note_path: Path | None = None,
    theme: str = "default",
    font_dirs: Sequence[Path] | None = None,
) -> PdfReport:
    """Render ``markdown`` (a whole note file) to ``out_path``; see the module doc.

    ``note_path`` is the note's vault-relative path (for relative images and the
    fallback title); ``font_dirs`` replaces the system font folders searched.
    Raises ValueError for an unknown theme and OSError when the file cannot be written.
    """
    chosen = get_theme(theme)
    fonts = load_fonts(font_dirs)
    warnings: list[str] = list(fonts.warnings)

    def warn(message: str) -> None:
        if message not in warnings and len(warnings) < 200:
            warnings.append(message)

    styles = make_styles(chosen, fonts)
    text = sanitize(markdown, warnings)
    front, body = split_frontmatter(text, warnings)
    body = strip_hidden(body)
    fallback = (note_path or Path(out_path)).stem
    info = title_info(front, fallback)

    def context() -> InlineContext:
        return InlineContext(fonts=fonts, link_color=hex_color(chosen.link),
                             highlight_color=hex_color(chosen.highlight),
                             code_color=hex_color(chosen.inline_code_bg),
                             code_size=styles.body.fontSize * 0.88)

    ctx = context()
    try:
        story = title_block(front, info, styles, ctx)
        cloze = front.text("type").lower() == "assessment" or any(
            "flashcard" in t.lower() for t in front.tags())
        renderer = BlockRenderer(_markdown(), styles, ctx, ImageResolver(vault_root, note_path),
                                 FRAME_WIDTH, FRAME_HEIGHT, warn, cloze)
        renderer.skip_heading = info.title
        tree = SyntaxTreeNode(_markdown().parse(body))
        story += renderer.render(tree.children)
        data, pages = build_pdf(story, styles, ctx, info, front)
    except Exception as exc:  # noqa: BLE001 - never fail an export: fall back to plain text
        warn(f"layout failed ({type(exc).__name__}: {str(exc)[:200]}); "
             "the note was exported as plain text")
        ctx = context()
        story = title_block(front, info, styles, ctx) + _plain_story(body, styles.body)
        data, pages = build_pdf(story, styles, ctx, info, front)

    if ctx.missing:
        shown = sorted(ctx.missing)[:_MAX_MISSING_LISTED]
        listed = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in shown)
        more = len(ctx.missing) - len(shown)
        cjk_missing = any(0x2E80 <= ord(ch) <= 0x9FFF or 0xAC00 <= ord(ch) <= 0xD7AF
                          for ch in ctx.missing)
        hint = ("; install a CJK TrueType font for Chinese/Japanese/Korean"
                if cjk_missing and not fonts.cjk else
                "; a symbol font (e.g. fonts-symbola) has many symbols"
                if not cjk_missing and not fonts.symbols else "")
        warn(f"no font has glyphs for {listed}{f' and {more} more' if more > 0 else ''}"
             f"{hint}")
    _write_atomic(Path(out_path), data)
    return PdfReport(pages=pages, warnings=warnings)


def _plain_story(body: str, style: object) -> list[Flowable]:
    out: list[Flowable] = []
    for block in body.split("\n\n"):
        if block.strip():
            chunk = escape(block[:5000]).replace("\n", "<br/>")
            out.append(Paragraph(chunk, style))  # type: ignore[arg-type]
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    # Not a vault path: vaultd renders into a private temp folder and files the bytes
    # through the path gate (daemon/pdfs.py, daemon/pdffiling.py, ``vaultd pdf``).
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
