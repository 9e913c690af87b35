"""Themes and paragraph styles for the PDF exporter.

A :class:`Theme` is the handful of colours and sizes a user can choose between
(``default``: colour accents for screens and tablets; ``print``: black on white, grey
boxes, no tinted backgrounds that waste toner). :func:`make_styles` turns a theme and a
:class:`~vault_tools.pdf.fonts.FontSet` into the ReportLab paragraph styles the block
renderer uses, so no other module hard-codes a colour or a font size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.fonts import tt2ps
from reportlab.lib.styles import ParagraphStyle

from .fonts import FontSet

Color = colors.Color


@dataclass(frozen=True)
class Theme:
    name: str
    body_size: float
    text: Color
    muted: Color
    heading: Color
    accent: Color
    link: Color
    rule: Color
    code_bg: Color
    code_border: Color
    inline_code_bg: Color
    highlight: Color
    table_header_bg: Color
    table_stripe_bg: Color | None
    table_grid: Color
    card_bg: Color
    # callout kind -> (bar colour, background colour)
    callouts: dict[str, tuple[Color, Color]] = field(default_factory=dict)


def _hex(value: str) -> Color:
    return colors.HexColor(value)


def _callouts(tinted: bool) -> dict[str, tuple[Color, Color]]:
    palette = {
        "note": ("#2f6fdb", "#eaf1fd"),
        "info": ("#2f6fdb", "#eaf1fd"),
        "abstract": ("#0e9aa7", "#e6f6f7"),
        "todo": ("#2f6fdb", "#eaf1fd"),
        "tip": ("#0e9a6e", "#e5f6ef"),
        "success": ("#2e9a3e", "#e8f6ea"),
        "question": ("#c98a00", "#fdf5e1"),
        "warning": ("#d9730d", "#fdf0e3"),
        "failure": ("#d23b3b", "#fbe9e9"),
        "danger": ("#c42020", "#fbe7e7"),
        "bug": ("#c42020", "#fbe7e7"),
        "example": ("#7a4fd0", "#f1ecfb"),
        "quote": ("#7c7c7c", "#f2f2f2"),
    }
    if tinted:
        return {k: (_hex(bar), _hex(bg)) for k, (bar, bg) in palette.items()}
    return {k: (_hex("#333333"), _hex("#f4f4f4")) for k in palette}


THEMES: dict[str, Theme] = {
    "default": Theme(
        name="default",
        body_size=10.5,
        text=_hex("#1d1d1f"),
        muted=_hex("#6b6b72"),
        heading=_hex("#17324d"),
        accent=_hex("#2f6fdb"),
        link=_hex("#1f5fbf"),
        rule=_hex("#c9d3df"),
        code_bg=_hex("#f5f7fa"),
        code_border=_hex("#dfe4ea"),
        inline_code_bg=_hex("#eceff3"),
        highlight=_hex("#fff1a8"),
        table_header_bg=_hex("#e8eef6"),
        table_stripe_bg=_hex("#f7f9fc"),
        table_grid=_hex("#c9d3df"),
        card_bg=_hex("#f7f9fc"),
        callouts=_callouts(True),
    ),
    "print": Theme(
        name="print",
        body_size=11,
        text=colors.black,
        muted=_hex("#444444"),
        heading=colors.black,
        accent=colors.black,
        link=colors.black,
        rule=_hex("#888888"),
        code_bg=colors.white,
        code_border=_hex("#999999"),
        inline_code_bg=_hex("#eeeeee"),
        highlight=_hex("#e6e6e6"),
        table_header_bg=_hex("#e6e6e6"),
        table_stripe_bg=None,
        table_grid=_hex("#777777"),
        card_bg=colors.white,
        callouts=_callouts(False),
    ),
}

CALLOUT_ALIASES = {
    "summary": "abstract", "tldr": "abstract", "hint": "tip", "important": "tip",
    "check": "success", "done": "success", "help": "question", "faq": "question",
    "caution": "warning", "attention": "warning", "fail": "failure", "missing": "failure",
    "error": "danger", "cite": "quote",
}


def get_theme(name: str) -> Theme:
    """The named theme; unknown names raise ValueError listing the choices."""
    try:
        return THEMES[name]
    except KeyError:
        raise ValueError(
            f"unknown PDF theme {name!r}; choose one of: {', '.join(sorted(THEMES))}"
        ) from None


def callout_colors(theme: Theme, kind: str) -> tuple[Color, Color]:
    kind = CALLOUT_ALIASES.get(kind, kind)
    return theme.callouts.get(kind, theme.callouts["note"])


@dataclass
class Styles:
    """Every paragraph style the renderer uses, derived from one theme and font set."""

    theme: Theme
    fonts: FontSet
    body: ParagraphStyle
    title: ParagraphStyle
    kicker: ParagraphStyle
    meta: ParagraphStyle
    headings: list[ParagraphStyle]
    code: ParagraphStyle
    table: ParagraphStyle
    table_head: ParagraphStyle
    callout_title: ParagraphStyle
    card_label: ParagraphStyle
    header: ParagraphStyle
    _cjk: dict[str, ParagraphStyle] = field(default_factory=dict)

    def cjk_variant(self, style: ParagraphStyle) -> ParagraphStyle:
        """Same style with CJK line breaking (break between any two ideographs)."""
        cached = self._cjk.get(style.name)
        if cached is None:
            cached = ParagraphStyle(style.name + "-cjk", parent=style, wordWrap="CJK")
            self._cjk[style.name] = cached
        return cached


def make_styles(theme: Theme, fonts: FontSet) -> Styles:
    size = theme.body_size
    body_font = fonts.serif
    body = ParagraphStyle(
        "vd-body", fontName=body_font, fontSize=size, leading=size * 1.42,
        textColor=theme.text, alignment=TA_LEFT, spaceAfter=size * 0.6,
        bulletFontName=fonts.sans, splitLongWords=True,
    )
    heading_font = tt2ps(fonts.sans, 1, 0)
    heading_sizes = (size * 1.75, size * 1.42, size * 1.2, size * 1.05, size, size * 0.95)
    headings = []
    for level, hsize in enumerate(heading_sizes, start=1):
        headings.append(ParagraphStyle(
            f"vd-h{level}", parent=body, fontName=heading_font, fontSize=hsize,
            leading=hsize * 1.25, textColor=theme.heading,
            spaceBefore=hsize * (1.1 if level <= 2 else 0.8), spaceAfter=hsize * 0.45,
            keepWithNext=True,
        ))
    return Styles(
        theme=theme,
        fonts=fonts,
        body=body,
        title=ParagraphStyle(
            "vd-title", parent=body, fontName=fonts.sans, fontSize=size * 2.1,
            leading=size * 2.5, textColor=theme.heading, spaceAfter=size * 0.5,
        ),
        kicker=ParagraphStyle(
            "vd-kicker", parent=body, fontName=fonts.sans, fontSize=size * 0.78,
            leading=size, textColor=theme.accent, spaceAfter=size * 0.3,
        ),
        meta=ParagraphStyle(
            "vd-meta", parent=body, fontName=fonts.sans, fontSize=size * 0.85,
            leading=size * 1.25, textColor=theme.muted, spaceAfter=size * 0.15,
        ),
        headings=headings,
        code=ParagraphStyle(
            "vd-code", parent=body, fontName=fonts.mono, fontSize=size * 0.8,
            leading=size * 1.1, textColor=theme.text, spaceBefore=0, spaceAfter=0,
        ),
        table=ParagraphStyle(
            "vd-table", parent=body, fontName=fonts.sans, fontSize=size * 0.85,
            leading=size * 1.12, spaceAfter=0,
        ),
        table_head=ParagraphStyle(
            "vd-table-head", parent=body, fontName=fonts.sans, fontSize=size * 0.85,
            leading=size * 1.12, spaceAfter=0, textColor=theme.heading,
        ),
        callout_title=ParagraphStyle(
            "vd-callout-title", parent=body, fontName=fonts.sans, fontSize=size * 0.95,
            leading=size * 1.3, spaceAfter=size * 0.2,
        ),
        card_label=ParagraphStyle(
            "vd-card-label", parent=body, fontName=fonts.sans, fontSize=size,
            leading=size * 1.42, textColor=theme.accent, spaceAfter=0,
        ),
        header=ParagraphStyle(
            "vd-header", parent=body, fontName=fonts.sans, fontSize=size * 0.75,
            leading=size * 0.9, textColor=theme.muted, spaceAfter=0,
        ),
    )
