"""Block-level markdown (a markdown-it syntax tree) to ReportLab flowables.

Owns the shape of the page: headings (tagged for the PDF outline), paragraphs, nested
bullet/ordered/task lists, fenced code that wraps, tables (via :mod:`.tables`),
blockquotes, Obsidian callouts as tinted boxes (folded ones printed open), flashcards as
Q/A boxes, images, rules and raw HTML reduced to its text. Nesting deeper than
``MAX_DEPTH`` is flattened so hostile input cannot push text off the page, and any
paragraph whose markup ReportLab rejects is re-set as plain escaped text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, HRFlowable, Paragraph, Spacer

from .flashcards import Card, split_cards
from .inline import ImageRef, InlineContext, InlineResult, hex_color, render_inline, text_markup
from .media import Boxed, ImageResolver, Indented, image_flowable
from .styles import Styles, callout_colors
from .tables import Cell, build_tables

MAX_DEPTH = 8
LIST_INDENT = 16.0
CODE_CHUNK = 20
_CALLOUT_RE = re.compile(r"^\[!([A-Za-z][\w-]{0,30})\]([+-]?)[ \t]*(.*)$")
_TASK_RE = re.compile(r"^\[([ xX])\]\s+")
_SCRIPT_RE = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT_RE = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_BR_RE = re.compile(r"<br\s*/?>|</p\s*>|</div\s*>|</li\s*>|</tr\s*>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]{0,2000}>")


class BlockRenderer:
    """Renders one note body; collects warnings and outline entries as it goes."""

    def __init__(self, md: MarkdownIt, styles: Styles, ctx: InlineContext,
                 images: ImageResolver, width: float, height: float,
                 warn: Callable[[str], None], cloze_context: bool) -> None:
        self.md = md
        self.styles = styles
        self.ctx = ctx
        self.images = images
        self.avail = width
        self.page_height = height
        self.warn = warn
        self.cloze_context = cloze_context
        self.in_flashcard_section = False
        self.list_depth = 0
        self.skip_heading: str | None = None
        self._style_cache: dict[tuple[str, float], ParagraphStyle] = {}

    # ----------------------------------------------------------------- plumbing
    def render(self, nodes: Sequence[SyntaxTreeNode], depth: int = 0) -> list[Flowable]:
        out: list[Flowable] = []
        for node in nodes:
            out.extend(self.node(node, depth))
        return out

    def node(self, node: SyntaxTreeNode, depth: int) -> list[Flowable]:
        kind = node.type
        if kind == "heading":
            return self.heading(node)
        if kind == "paragraph":
            return self.paragraph(node, self.styles.body)
        if kind in ("bullet_list", "ordered_list"):
            return self.list(node, depth)
        if kind == "blockquote":
            return self.blockquote(node, depth)
        if kind in ("fence", "code_block"):
            return self.code(node.content)
        if kind == "table":
            return self.table(node)
        if kind == "hr":
            return [HRFlowable(width="100%", thickness=0.6, color=self.styles.theme.rule,
                               spaceBefore=6, spaceAfter=10)]
        if kind == "html_block":
            return self.html_block(node.content)
        return self.render(node.children, depth)

    def para(self, markup: str, style: ParagraphStyle, cjk: bool = False,
             bullet: str | None = None, plain: str | None = None) -> Paragraph:
        if cjk:
            style = self.styles.cjk_variant(style)
        try:
            return Paragraph(markup, style, bulletText=bullet)
        except Exception as exc:  # noqa: BLE001 - ReportLab rejects odd markup; degrade
            self.warn(f"a paragraph was set as plain text ({type(exc).__name__})")
            text = plain if plain is not None else _TAG_RE.sub("", markup)
            return Paragraph(escape(text), style, bulletText=bullet)

    def inline(self, tokens: Sequence[Token], style: ParagraphStyle) -> InlineResult:
        return render_inline(tokens, style.fontName, self.ctx)

    def inline_source(self, source: str, style: ParagraphStyle) -> InlineResult:
        tokens = self.md.parseInline(source)
        children = tokens[0].children if tokens and tokens[0].children else []
        return self.inline(children, style)

    def styled(self, style: ParagraphStyle, **changes: float) -> ParagraphStyle:
        key = (style.name, *sorted(changes.items()))
        cached = self._style_cache.get(key)  # type: ignore[arg-type]
        if cached is None:
            cached = ParagraphStyle(f"{style.name}-{len(self._style_cache)}", parent=style,
                                    **changes)
            self._style_cache[key] = cached  # type: ignore[index]
        return cached

    # ----------------------------------------------------------------- blocks
    def heading(self, node: SyntaxTreeNode) -> list[Flowable]:
        level = min(max(int(node.tag[1:]) if node.tag[1:].isdigit() else 1, 1), 6)
        style = self.styles.headings[level - 1]
        result = self.inline(_inline_children(node), style)
        title = result.plain.strip()
        self.in_flashcard_section = "flashcard" in title.lower()
        if self.skip_heading is not None and level == 1 and title == self.skip_heading:
            self.skip_heading = None
            return []
        self.skip_heading = None
        para = self.para(result.markup, style, result.cjk, plain=title)
        para._vd_outline = (level, title or "…")  # type: ignore[attr-defined]
        return [para]

    def paragraph(self, node: SyntaxTreeNode, style: ParagraphStyle,
                  bullet: str | None = None) -> list[Flowable]:
        source = node.children[0].content if node.children else ""
        if any(mark in source for mark in ("::", "\n?", "{{")) or (
                "==" in source and self.cloze_context_now()):
            segments = split_cards(source, self.cloze_context_now())
            if segments is not None:
                return self.cards(segments, style, bullet)
        result = self.inline(_inline_children(node), style)
        return self.paragraph_from(result, style, bullet)

    def paragraph_from(self, result: InlineResult, style: ParagraphStyle,
                       bullet: str | None = None) -> list[Flowable]:
        out: list[Flowable] = []
        if result.markup.strip() or bullet is not None:
            out.append(self.para(result.markup, style, result.cjk, bullet, result.plain))
        for ref in result.images:
            out.extend(self.image(ref))
        return out

    def cloze_context_now(self) -> bool:
        return self.cloze_context or self.in_flashcard_section

    def cards(self, segments: Sequence[str | Card], style: ParagraphStyle,
              bullet: str | None) -> list[Flowable]:
        out: list[Flowable] = []
        theme = self.styles.theme
        for seg in segments:
            if isinstance(seg, str):
                if seg.strip():
                    out.extend(self.paragraph_from(self.inline_source(seg, style), style,
                                                   bullet))
                    bullet = None
                continue
            q = self.inline_source(seg.question, style)
            a = self.inline_source(seg.answer, style)
            qa_style = self.styled(style, spaceAfter=3, leftIndent=17, bulletIndent=0,
                                   bulletFontName=self.styles.card_label.fontName,
                                   bulletColor=theme.accent)
            box = Boxed([self.para(f"<b>{q.markup}</b>", qa_style, q.cjk, "Q", q.plain),
                         HRFlowable(width="100%", thickness=0.4, color=theme.table_grid,
                                    spaceBefore=1, spaceAfter=4),
                         self.para(a.markup, qa_style, a.cjk, "A", a.plain)],
                        bg=theme.card_bg, bar=None, border=theme.table_grid,
                        pad=(6, 8, 3, 8))
            box.spaceBefore, box.spaceAfter = 2, 8
            out.append(box)
            for ref in q.images + a.images:
                out.extend(self.image(ref))
        return out

    def list(self, node: SyntaxTreeNode, depth: int) -> list[Flowable]:
        ordered = node.type == "ordered_list"
        try:
            start = int(str(node.attrs.get("start", 1)))
        except ValueError:
            start = 1
        indent = LIST_INDENT if depth < MAX_DEPTH else 0.0
        style = self.styled(self.styles.body, spaceAfter=2.5, bulletIndent=-LIST_INDENT + 3)
        out: list[Flowable] = []
        saved = self.avail
        self.avail = max(self.avail - indent, 60)
        self.list_depth += 1
        try:
            for i, item in enumerate(node.children):
                bullet = f"{start + i}." if ordered else self.bullet(self.list_depth - 1)
                out.extend(Indented(f, indent) if indent else f
                           for f in self.list_item(item, bullet, style, depth + 1))
        finally:
            self.avail = saved
            self.list_depth -= 1
        if out and depth == 0:
            out.append(Spacer(1, 4))
        return out

    def bullet(self, depth: int) -> str:
        if not self.styles.fonts.truetype:
            return "•" if depth % 2 == 0 else "-"
        return ("•", "◦", "▪")[depth % 3]

    def list_item(self, item: SyntaxTreeNode, bullet: str, style: ParagraphStyle,
                  depth: int) -> list[Flowable]:
        children = list(item.children)
        out: list[Flowable] = []
        if children and children[0].type == "paragraph":
            first = children.pop(0)
            source = first.children[0].content if first.children else ""
            task = _TASK_RE.match(source)
            if task:
                done = task.group(1) != " "
                bullet = self.task_box(done)
                tokens = _strip_task(_inline_children(first), task.group(0))
                result = self.inline(tokens, style)
                if done:
                    result.markup = f'<font color="{hex_color(self.styles.theme.muted)}">' \
                                    f"{result.markup}</font>"
                out.extend(self.paragraph_from(result, style, bullet))
            else:
                out.extend(self.paragraph(first, style, bullet))
        else:
            out.append(self.para("", style, bullet=bullet))
        out.extend(self.render(children, depth))
        return out

    def task_box(self, done: bool) -> str:
        if self.styles.fonts.truetype:
            return "☑" if done else "☐"
        return "[x]" if done else "[ ]"

    def blockquote(self, node: SyntaxTreeNode, depth: int) -> list[Flowable]:
        if depth >= MAX_DEPTH:
            return self.render(node.children, depth + 1)
        children = list(node.children)
        theme = self.styles.theme
        title: Flowable | None = None
        bar, bg = theme.rule, theme.code_bg
        quote_style = self.styled(self.styles.body, spaceAfter=3)
        if children and children[0].type == "paragraph" and children[0].children:
            source = children[0].children[0].content
            first_line, _, rest = source.partition("\n")
            match = _CALLOUT_RE.match(first_line)
            if match:
                kind = match.group(1).lower()
                bar, bg = callout_colors(theme, kind)
                label = match.group(3).strip() or kind.replace("-", " ").title()
                res = self.inline_source(label, self.styles.callout_title)
                title_style = self.styled(self.styles.callout_title)
                title = self.para(
                    f'<font color="{hex_color(bar)}"><b>{res.markup}</b></font>',
                    title_style, res.cjk, plain=res.plain)
                children.pop(0)
                body_first = self.paragraph_from(self.inline_source(rest, quote_style),
                                                 quote_style) if rest.strip() else []
            else:
                body_first = []
        else:
            body_first = []
        saved = self.avail
        self.avail = max(self.avail - 22, 60)
        try:
            flows = body_first + [f for child in children for f in
                                  (self.paragraph(child, quote_style)
                                   if child.type == "paragraph" else self.node(child, depth + 1))]
        finally:
            self.avail = saved
        if title is not None:
            flows.insert(0, title)
        if not flows:
            return []
        box = Boxed(flows, bg=bg, bar=bar)
        box.spaceBefore, box.spaceAfter = 3, 9
        return [box]

    def code(self, content: str) -> list[Flowable]:
        lines = content.rstrip("\n").split("\n")
        style = self.styles.code
        mono = self.styles.fonts.mono
        rows: list[Flowable] = []
        for i in range(0, max(len(lines), 1), CODE_CHUNK):
            chunk = lines[i:i + CODE_CHUNK]
            markup = "<br/>".join(_code_line(line, mono, self.ctx) for line in chunk)
            rows.append(self.para(markup, style, plain="\n".join(chunk)))
        theme = self.styles.theme
        box = Boxed(rows, bg=theme.code_bg, bar=None, border=theme.code_border,
                    pad=(5, 7, 6, 7))
        box.spaceBefore, box.spaceAfter = 2, 9
        return [box]

    def table(self, node: SyntaxTreeNode) -> list[Flowable]:
        header: list[Cell] | None = None
        body: list[list[Cell]] = []
        aligns: list[str] = []
        style = self.styles.table
        for section in node.children:
            for tr in section.children:
                cells = []
                for cell in tr.children:
                    res = self.inline(_inline_children(cell), style)
                    cells.append(Cell(res.markup, res.plain, res.cjk))
                    if section.type == "thead":
                        align = str(cell.attrs.get("style", "")).replace("text-align:", "")
                        aligns.append(align)
                if section.type == "thead" and header is None:
                    header = cells
                else:
                    body.append(cells)
        return build_tables(header, body, aligns, self.styles, self.avail,
                            self.page_height * 0.8, self.warn)

    def html_block(self, content: str) -> list[Flowable]:
        text = _COMMENT_RE.sub("", _SCRIPT_RE.sub("", content))
        text = html.unescape(_TAG_RE.sub("", _BR_RE.sub("\n", text)))
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        style = self.styles.body
        return [self.para(text_markup(p, style.fontName, self.ctx).replace("\n", "<br/>"),
                          style, plain=p) for p in paragraphs]

    def image(self, ref: ImageRef) -> list[Flowable]:
        path = self.images.resolve(ref.target, ref.wiki)
        if path is not None:
            try:
                return [image_flowable(self.images.read(path), self.avail,
                                       self.page_height * 0.5, ref.width),
                        Spacer(1, 6)]
            except Exception as exc:  # noqa: BLE001 - unreadable image: say so, go on
                self.warn(f"image {ref.target!r} could not be read ({type(exc).__name__})")
        elif "://" not in ref.target:
            self.warn(f"image {ref.target!r} not found in the vault")
        alt = text_markup(f"[image: {ref.alt}]", self.styles.meta.fontName, self.ctx)
        return [self.para(alt, self.styles.meta)]


def _inline_children(node: SyntaxTreeNode) -> list[Token]:
    if node.children and node.children[0].type == "inline":
        token = node.children[0].token
        return list(token.children or []) if token is not None else []
    return []


def _strip_task(tokens: list[Token], prefix: str) -> list[Token]:
    if tokens and tokens[0].type == "text" and tokens[0].content.startswith(prefix):
        first = tokens[0].copy()
        first.content = first.content[len(prefix):]
        return [first, *tokens[1:]]
    return tokens


def _code_line(line: str, mono: str, ctx: InlineContext) -> str:
    """One code line with indentation and runs of spaces kept but still wrappable."""
    stripped = line.lstrip(" ")
    lead = len(line) - len(stripped)
    parts = re.split(r"( {2,})", stripped)
    out = ["\u00a0" * lead]
    for part in parts:
        out.append("\u00a0" * (len(part) - 1) + " " if part.startswith("  ") else part)
    return text_markup("".join(out), mono, ctx) if line else ""
