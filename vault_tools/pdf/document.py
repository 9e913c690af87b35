"""Page layout for the PDF exporter: doc template, title block, header/footer, outline.

Owns everything that is about pages rather than markdown: A4 geometry, the running
header (note title and channel, from page 2 on) and page-number footer, the title block
made from the note's frontmatter, PDF metadata, and the outline (bookmarks) built from
headings as they are laid out, with levels clamped so ReportLab never sees a jump.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    HRFlowable,
    PageTemplate,
    Paragraph,
    Spacer,
)

from .inline import InlineContext, hex_color, text_markup
from .source import Frontmatter, format_duration
from .styles import Styles

PAGE_SIZE = A4
MARGIN_X = 2.1 * cm
MARGIN_TOP = 2.3 * cm
MARGIN_BOTTOM = 2.0 * cm
FRAME_WIDTH = PAGE_SIZE[0] - 2 * MARGIN_X
FRAME_HEIGHT = PAGE_SIZE[1] - MARGIN_TOP - MARGIN_BOTTOM


@dataclass
class TitleInfo:
    title: str
    kicker: str
    running_right: str


class _Doc(BaseDocTemplate):
    def __init__(self, buf: io.BytesIO, styles: Styles, ctx: InlineContext,
                 info: TitleInfo, **kw: object) -> None:
        super().__init__(buf, pagesize=PAGE_SIZE, leftMargin=MARGIN_X, rightMargin=MARGIN_X,
                         topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM, **kw)
        self.vd_styles = styles
        self.vd_info = info
        self._outline_level = -1
        self._bookmarks = 0
        header_style = styles.header
        self._header_left = _fit(info.title, header_style.fontName, header_style.fontSize,
                                 FRAME_WIDTH * 0.62)
        self._header_left_markup = text_markup(self._header_left, header_style.fontName, ctx)
        self._header_right_markup = text_markup(
            _fit(info.running_right, header_style.fontName, header_style.fontSize,
                 FRAME_WIDTH * 0.35), header_style.fontName, ctx)
        frame = Frame(MARGIN_X, MARGIN_BOTTOM, FRAME_WIDTH, FRAME_HEIGHT, id="body",
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        self.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._decorate)])

    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802 - ReportLab API
        entry = getattr(flowable, "_vd_outline", None)
        if entry is None:
            return
        level, text = entry
        level = max(0, min(level, self._outline_level + 1))
        self._outline_level = level
        self._bookmarks += 1
        key = f"vd-h{self._bookmarks}"
        top = self.frame._y + flowable.height + 4  # noqa: SLF001 - current frame position
        self.canv.bookmarkPage(key, fit="XYZ", left=0, top=top)
        self.canv.addOutlineEntry(text[:200], key, level=level, closed=level >= 2)

    def _decorate(self, canvas: Canvas, doc: BaseDocTemplate) -> None:
        styles = self.vd_styles
        theme = styles.theme
        width, height = PAGE_SIZE
        canvas.saveState()
        page = canvas.getPageNumber()
        if page > 1:
            y = height - MARGIN_TOP + 14
            _draw_para(canvas, self._header_left_markup, styles, MARGIN_X, y, "left")
            _draw_para(canvas, self._header_right_markup, styles, width - MARGIN_X, y,
                       "right")
            canvas.setStrokeColor(theme.rule)
            canvas.setLineWidth(0.5)
            canvas.line(MARGIN_X, y - 4, width - MARGIN_X, y - 4)
        canvas.setFont(styles.header.fontName, styles.header.fontSize + 0.5)
        canvas.setFillColor(theme.muted)
        canvas.drawCentredString(width / 2, MARGIN_BOTTOM - 22, str(page))
        canvas.restoreState()


def _fit(text: str, font: str, size: float, width: float) -> str:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    text = " ".join(text.split())[:300]
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _draw_para(canvas: Canvas, markup: str, styles: Styles, x: float, y: float,
               side: str) -> None:
    style = styles.header
    if side == "right":
        style = ParagraphStyle("vd-header-right", parent=style, alignment=TA_RIGHT)
    try:
        para = Paragraph(markup, style)
    except Exception:  # noqa: BLE001 - never let a header break the page
        return
    width = FRAME_WIDTH * 0.62 if side == "left" else FRAME_WIDTH * 0.36
    para.wrap(width, 40)
    para.drawOn(canvas, x - width if side == "right" else x, y)


def title_info(front: Frontmatter, fallback_title: str) -> TitleInfo:
    title = front.text("title") or fallback_title
    kind = front.text("type").lower()
    kicker = {"study-note": "Study note", "assessment": "Assessment"}.get(kind, "")
    return TitleInfo(title=_clean(title), kicker=kicker,
                     running_right=_clean(front.text("channel") or kicker))


def title_block(front: Frontmatter, info: TitleInfo, styles: Styles,
                ctx: InlineContext) -> list[Flowable]:
    """Kicker, title, meta line (channel · duration · dates), source link, tags, rule."""
    out: list[Flowable] = []

    def para(markup: str, style: object) -> Paragraph:
        try:
            return Paragraph(markup, style)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001
            return Paragraph("", style)  # type: ignore[arg-type]

    meta_font = styles.meta.fontName
    if info.kicker:
        out.append(para(text_markup(info.kicker.upper(), styles.kicker.fontName, ctx),
                        styles.kicker))
    title = para(text_markup(info.title, styles.title.fontName, ctx), styles.title)
    title._vd_outline = (0, info.title or "Note")  # type: ignore[attr-defined]
    out.append(title)

    facts: list[str] = []
    if front.text("channel"):
        facts.append(front.text("channel"))
    duration = format_duration(front.data.get("duration"))
    if duration:
        facts.append(f"Duration {duration}")
    if front.text("published"):
        facts.append(f"Published {front.text('published')}")
    if front.text("created"):
        facts.append(f"Created {front.text('created')}")
    if facts:
        out.append(para(" · ".join(text_markup(f, meta_font, ctx) for f in facts),
                        styles.meta))
    source = front.text("source")
    if source:
        shown = text_markup(source, meta_font, ctx)
        if source.lower().startswith(("http://", "https://")):
            ctx.links.append(source)
            shown = (f'<a href={quoteattr(source)} color="{hex_color(styles.theme.link)}">'
                     f"{shown}</a>")
        out.append(para(f"Source: {shown}", styles.meta))
    tags: Sequence[str] = front.tags()
    if tags:
        out.append(para(text_markup("  ".join(f"#{t.lstrip('#')}" for t in tags[:30]),
                                    meta_font, ctx), styles.meta))
    out.append(Spacer(1, 4))
    out.append(HRFlowable(width="100%", thickness=1.2, color=styles.theme.accent,
                          spaceBefore=2, spaceAfter=12))
    return out


def _clean(text: str) -> str:
    """Document-info strings must be encodable (no lone surrogates from bad bytes)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def build_pdf(story: list[Flowable], styles: Styles, ctx: InlineContext, info: TitleInfo,
              front: Frontmatter) -> tuple[bytes, int]:
    """Lay out ``story``; returns the PDF bytes and the page count."""
    buf = io.BytesIO()
    doc = _Doc(buf, styles, ctx, info, title=_clean(info.title),
               author=_clean(front.text("channel")), subject=_clean(info.kicker or "Note"),
               creator="vaultd", producer="vaultd (ReportLab)")
    doc.build(story)
    return buf.getvalue(), int(doc.page)
