"""Markdown tables to ReportLab tables.

Owns table layout: column widths from the cells' content (natural width when it fits,
otherwise shared out above each column's longest word), per-column alignment from the
markdown ``:--:`` row, a header row repeated on every page, zebra rows, and graceful
handling of huge tables: long ones are emitted in chunks of rows (each repeating the
header, so pages stay cheap to lay out), very wide ones in groups of columns that repeat
the first column.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.fonts import tt2ps
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from .styles import Styles

ROW_CHUNK = 60
MAX_ROWS = 20_000
PAD = 5.0
MIN_COL = 28.0
_MEASURE_ROWS = 200
_ALIGN = {"left": TA_LEFT, "center": TA_CENTER, "right": TA_RIGHT}


@dataclass
class Cell:
    markup: str
    plain: str
    cjk: bool


def _natural_widths(rows: Sequence[Sequence[Cell]], ncols: int, font: str, bold: str,
                    size: float) -> tuple[list[float], list[float]]:
    """Per column: widest cell and longest word, measured on the first rows plus the
    longest cells anywhere (measuring every cell of a 10,000-row table is too slow)."""
    natural = [0.0] * ncols
    minimum = [0.0] * ncols
    sample = list(enumerate(rows[:_MEASURE_ROWS]))
    if len(rows) > _MEASURE_ROWS:
        for c in range(ncols):
            longest = heapq.nlargest(20, range(_MEASURE_ROWS, len(rows)),
                                     key=lambda r, c=c: len(rows[r][c].plain))
            sample.extend((r, rows[r]) for r in longest)
    for r, row in sample:
        face = bold if r == 0 else font
        for c, cell in enumerate(row):
            text = cell.plain[:400]
            natural[c] = max(natural[c], stringWidth(text, face, size))
            longest_word = max((stringWidth(w, face, size) for w in text.split()[:60]),
                               default=0)
            minimum[c] = max(minimum[c], longest_word)
    return natural, minimum


def column_widths(natural: list[float], minimum: list[float], avail: float) -> list[float]:
    """Widths summing to at most ``avail``: natural if it fits, else shared by need."""
    nat = [max(n + 2 * PAD + 3, MIN_COL) for n in natural]
    if sum(nat) <= avail:
        return nat
    mins = [min(max(m + 2 * PAD + 3, MIN_COL), avail * 0.35, n) for m, n in zip(minimum, nat,
                                                                       strict=True)]
    if sum(mins) >= avail:
        return [avail * m / sum(mins) for m in mins]
    extra = avail - sum(mins)
    want = [n - m for n, m in zip(nat, mins, strict=True)]
    total = sum(want) or 1.0
    return [m + extra * w / total for m, w in zip(mins, want, strict=True)]


def build_tables(
    header: list[Cell] | None,
    body: list[list[Cell]],
    aligns: list[str],
    styles: Styles,
    avail: float,
    max_height: float,
    warn: Callable[[str], None],
) -> list[Flowable]:
    """Flowables for one markdown table (several when it is split up)."""
    theme = styles.theme
    rows = ([header] if header is not None else []) + body
    if not rows:
        return []
    if len(body) > MAX_ROWS:
        warn(f"a table with {len(body):,} rows was cut to its first {MAX_ROWS:,} rows")
        body = body[:MAX_ROWS]
        rows = ([header] if header is not None else []) + body
    ncols = max(len(r) for r in rows)
    empty = Cell("", "", False)
    rows = [list(r) + [empty] * (ncols - len(r)) for r in rows]
    aligns = list(aligns) + [""] * (ncols - len(aligns))
    font = styles.table.fontName
    bold = tt2ps(font, 1, 0)
    natural, minimum = _natural_widths(rows, ncols, font, bold, styles.table.fontSize)

    max_cols = max(int(avail // (MIN_COL * 2.2)), 2)
    groups: list[list[int]] = []
    if ncols <= max_cols:
        groups.append(list(range(ncols)))
    else:
        warn(f"a table with {ncols} columns was split into groups of columns")
        for start in range(1, ncols, max_cols - 1):
            groups.append([0] + list(range(start, min(start + max_cols - 1, ncols))))

    has_header = header is not None
    out: list[Flowable] = []
    para_cache: dict[tuple[bool, str, bool], ParagraphStyle] = {}

    def cell_style(is_head: bool, align: str, cjk: bool) -> ParagraphStyle:
        key = (is_head, align, cjk)
        if key not in para_cache:
            base = styles.table_head if is_head else styles.table
            style = ParagraphStyle(f"{base.name}-{align}", parent=base,
                                   alignment=_ALIGN.get(align, TA_LEFT))
            para_cache[key] = styles.cjk_variant(style) if cjk else style
        return para_cache[key]

    size = styles.table.fontSize

    def paragraph(cell: Cell, is_head: bool, align: str, width: float) -> Flowable | str:
        inner = width - 2 * PAD
        if (not cell.cjk and cell.markup == escape(cell.plain) and len(cell.plain) < 120
                and stringWidth(cell.plain, bold if is_head else font, size) <= inner):
            return cell.plain  # plain, short cell: let the table draw the string (fast)
        markup = f"<b>{cell.markup}</b>" if is_head and cell.markup else cell.markup
        style = cell_style(is_head, align, cell.cjk)
        try:
            para = Paragraph(markup, style)
        except Exception:  # noqa: BLE001 - bad markup: show the plain text
            para = Paragraph(escape(cell.plain), cell_style(is_head, align, False))
        if len(cell.plain) > 200:
            _, height = para.wrap(inner, max_height)
            if height > max_height:
                keep = max(int(len(cell.plain) * max_height / height * 0.85), 1)
                warn("a table cell too tall for one page was shortened")
                para = Paragraph(escape(cell.plain[:keep]) + " […]", style)
        return para

    head_rows = 1 if has_header else 0
    for cols in groups:
        widths = column_widths([natural[c] for c in cols], [minimum[c] for c in cols], avail)
        body_rows = rows[head_rows:]
        chunks = [body_rows[i:i + ROW_CHUNK] for i in range(0, len(body_rows), ROW_CHUNK)]
        for n, chunk in enumerate(chunks or [[]]):
            data: list[list[Flowable]] = []
            if has_header:
                data.append([paragraph(rows[0][c], True, aligns[c], w)
                             for c, w in zip(cols, widths, strict=True)])
            data.extend([paragraph(r[c], False, aligns[c], w)
                         for c, w in zip(cols, widths, strict=True)] for r in chunk)
            if not data:
                continue
            table = Table(data, colWidths=widths, repeatRows=head_rows, hAlign="LEFT")
            cmds: list[tuple] = [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("FONT", (0, 0), (-1, -1), font, size, styles.table.leading),
                ("TEXTCOLOR", (0, 0), (-1, -1), theme.text),
                ("LEFTPADDING", (0, 0), (-1, -1), PAD),
                ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, theme.table_grid),
                ("BOX", (0, 0), (-1, -1), 0.6, theme.table_grid),
            ]
            if has_header:
                cmds += [("BACKGROUND", (0, 0), (-1, 0), theme.table_header_bg),
                         ("FONT", (0, 0), (-1, 0), bold, size, styles.table.leading),
                         ("TEXTCOLOR", (0, 0), (-1, 0), theme.heading),
                         ("LINEBELOW", (0, 0), (-1, 0), 0.9, theme.table_grid)]
            for i, c in enumerate(cols):
                align = {"center": "CENTER", "right": "RIGHT"}.get(aligns[c], "LEFT")
                cmds.append(("ALIGN", (i, 0), (i, -1), align))
            if theme.table_stripe_bg is not None:
                cmds.append(("ROWBACKGROUNDS", (0, head_rows), (-1, -1),
                             [None, theme.table_stripe_bg]))
            table.setStyle(TableStyle(cmds))
            table.spaceBefore = 4 if n == 0 else 0
            table.spaceAfter = 10 if n == len(chunks) - 1 else 0
            out.append(table)
    return out
