"""Inline markdown tokens to ReportLab Paragraph markup.

Owns everything inside one paragraph: emphasis, strikethrough, ``==highlight==``, inline
code, links (only http/https/mailto become clickable), Obsidian ``[[wikilinks]]`` shown
as their display text, ``![[embeds]]`` and ``![](images)`` collected for the block
renderer, bare URLs, and a whitelist of inline HTML. All text is XML-escaped here and
nowhere else, and each character is checked against the paragraph's font: characters it
lacks switch to a fallback face (sans, CJK) or are recorded as missing glyphs.

Tags are kept on a stack so the output is always well nested, even for input such as
``==a **b== c**`` where markdown's own spans overlap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from markdown_it.token import Token
from reportlab.lib.colors import Color

from .fonts import FontSet

_CJK_RE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f]")
_SPECIAL_RE = re.compile(
    r"(?P<wiki>!?\[\[[^\[\]\n]{1,500}?\]\])|(?P<mark>==)|(?P<url>https?://[^\s<>\"'\[\]]{3,2000})"
)
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_HTML_TAGS = {
    "b": ("b", "<b>", "</b>"), "strong": ("b", "<b>", "</b>"),
    "i": ("i", "<i>", "</i>"), "em": ("i", "<i>", "</i>"),
    "u": ("u", "<u>", "</u>"), "s": ("s", "<strike>", "</strike>"),
    "del": ("s", "<strike>", "</strike>"), "strike": ("s", "<strike>", "</strike>"),
    "sub": ("sub", "<sub>", "</sub>"), "sup": ("sup", "<super>", "</super>"),
}
_HTML_TAG_RE = re.compile(r"^<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9]*)")


def hex_color(color: Color) -> str:
    return "#" + color.hexval()[2:]


def has_cjk(text: str) -> bool:
    return _CJK_RE.search(text) is not None


def is_safe_url(href: str) -> bool:
    return href.strip().lower().startswith(_SAFE_SCHEMES)


def is_image_target(target: str) -> bool:
    return target.lower().split("?", 1)[0].endswith(_IMAGE_EXT)


@dataclass
class ImageRef:
    """An image the paragraph asked for; the block renderer resolves and places it."""

    target: str
    alt: str
    wiki: bool
    width: float | None = None


@dataclass
class InlineContext:
    """Per-export state shared by every paragraph: fonts, colours, findings."""

    fonts: FontSet
    link_color: str
    highlight_color: str
    code_color: str
    code_size: float
    missing: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)


@dataclass
class InlineResult:
    markup: str
    plain: str
    images: list[ImageRef]
    cjk: bool


class _Markup:
    """Append-only markup with a tag stack that guarantees proper nesting."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.stack: list[tuple[str, str, str]] = []

    def open(self, key: str, open_tag: str, close_tag: str) -> None:
        self.parts.append(open_tag)
        self.stack.append((key, open_tag, close_tag))

    def is_open(self, key: str) -> bool:
        return any(k == key for k, _, _ in self.stack)

    def close(self, key: str) -> None:
        if not self.is_open(key):
            return
        reopen: list[tuple[str, str, str]] = []
        while self.stack:
            entry = self.stack.pop()
            self.parts.append(entry[2])
            if entry[0] == key:
                break
            reopen.append(entry)
        for entry in reversed(reopen):
            self.open(*entry)

    def toggle(self, key: str, open_tag: str, close_tag: str) -> None:
        if self.is_open(key):
            self.close(key)
        else:
            self.open(key, open_tag, close_tag)

    def finish(self) -> str:
        while self.stack:
            self.parts.append(self.stack.pop()[2])
        return "".join(self.parts)


# Marks no installed face may have (DejaVu lacks the emoji forms), each with plainer
# look-alikes, best first; the last is plain ASCII that every font shows.
PLAIN_MARKS: dict[str, tuple[str, ...]] = {
    "✅": ("✔", "✓", "[x]"), "☑": ("✔", "✓", "[x]"), "✔": ("✓", "[x]"), "✓": ("[x]",),
    "❌": ("✘", "✗", "[ ]"), "❎": ("✘", "✗", "[ ]"), "✖": ("✘", "✗", "x"),
    "✘": ("✗", "x"), "✗": ("x",), "⬜": ("☐", "[ ]"), "☐": ("[ ]",),
}
_VS16 = "\ufe0f"  # emoji presentation selector: invisible, and in no text face


def plain_marks(text: str, faces: list[str], covers: Callable[[str, int], bool]) -> str:
    """``text`` with each mark of :data:`PLAIN_MARKS` that none of ``faces`` can show
    replaced by the first look-alike one of them can (an empty box helps nobody)."""
    if not any(ch in PLAIN_MARKS or ch == _VS16 for ch in text):
        return text
    out = []
    for ch in text.replace(_VS16, ""):
        if ch in PLAIN_MARKS and not any(covers(f, ord(ch)) for f in faces):
            ch = next((alt for alt in PLAIN_MARKS[ch]
                       if all(any(covers(f, ord(c)) for f in faces) for c in alt)),
                      PLAIN_MARKS[ch][-1])
        out.append(ch)
    return "".join(out)


def text_markup(text: str, base_font: str, ctx: InlineContext) -> str:
    """Escape ``text`` and wrap characters ``base_font`` lacks in a fallback face."""
    if text.isascii():
        return escape(text)
    fonts = ctx.fonts
    fallbacks = [f for f in (fonts.sans, fonts.serif, fonts.mono) if f != base_font]
    if fonts.cjk:
        fallbacks.append(fonts.cjk)
    if fonts.symbols:
        fallbacks.append(fonts.symbols)
    text = plain_marks(text, [base_font, *fallbacks], fonts.covers)
    out: list[str] = []
    run: list[str] = []
    run_font: str | None = None

    def flush() -> None:
        if not run:
            return
        chunk = escape("".join(run))
        out.append(chunk if run_font is None else f'<font face="{run_font}">{chunk}</font>')
        run.clear()

    for ch in text:
        cp = ord(ch)
        font: str | None = None
        if cp >= 128 and not fonts.covers(base_font, cp) and not ch.isspace():
            font = next((f for f in fallbacks if fonts.covers(f, cp)), None)
            if font is None:
                ctx.missing.add(ch)
        if font != run_font:
            flush()
            run_font = font
        run.append(ch)
    flush()
    return "".join(out)


def wikilink_display(inner: str) -> str:
    """``note#Heading|alias`` -> ``alias``; ``note#Heading`` -> ``note › Heading``."""
    target, _, alias = inner.partition("|")
    if alias.strip():
        return alias.strip()
    page, _, anchor = target.partition("#")
    page, anchor = page.strip(), anchor.strip()
    if anchor.startswith("^"):
        anchor = ""
    if page and anchor:
        return f"{page} › {anchor}"
    return page or anchor or inner


def _wiki_embed(inner: str) -> ImageRef | None:
    target, _, size = inner.partition("|")
    target = target.strip()
    if not is_image_target(target):
        return None
    width: float | None = None
    match = re.match(r"\s*(\d{1,5})", size)
    if match:
        width = float(match.group(1)) * 0.75  # Obsidian sizes are CSS pixels
    return ImageRef(target=target, alt=target, wiki=True, width=width)


def _text(token_text: str, m: _Markup, base: str, ctx: InlineContext, images: list[ImageRef],
          plain: list[str]) -> None:
    pos = 0
    for match in _SPECIAL_RE.finditer(token_text):
        if match.start() > pos:
            chunk = token_text[pos:match.start()]
            m.parts.append(text_markup(chunk, base, ctx))
            plain.append(chunk)
        pos = match.end()
        if match.group("mark"):
            m.toggle("mark", f'<font backcolor="{ctx.highlight_color}">', "</font>")
        elif match.group("wiki"):
            raw = match.group("wiki")
            embed = raw.startswith("!")
            inner = raw[3:-2] if embed else raw[2:-2]
            if embed:
                ref = _wiki_embed(inner)
                if ref is not None:
                    images.append(ref)
                    continue
            shown = wikilink_display(inner)
            m.parts.append(text_markup(shown, base, ctx))
            plain.append(shown)
        else:
            url = match.group("url").rstrip(".,;:!?)")
            pos = match.start() + len(url)
            if m.is_open("a"):
                m.parts.append(text_markup(url, base, ctx))
            else:
                ctx.links.append(url)
                m.parts.append(f'<a href={quoteattr(url)} color="{ctx.link_color}">'
                               f"{text_markup(url, base, ctx)}</a>")
            plain.append(url)
    if pos < len(token_text):
        chunk = token_text[pos:]
        m.parts.append(text_markup(chunk, base, ctx))
        plain.append(chunk)


def _html_inline(content: str, m: _Markup, ctx: InlineContext) -> None:
    match = _HTML_TAG_RE.match(content)
    if not match:
        return
    closing, tag = match.group(1) == "/", match.group(2).lower()
    if tag == "br":
        m.parts.append("<br/>")
    elif tag == "mark":
        if closing:
            m.close("mark")
        else:
            m.open("mark", f'<font backcolor="{ctx.highlight_color}">', "</font>")
    elif tag in _HTML_TAGS:
        key, open_tag, close_tag = _HTML_TAGS[tag]
        if closing:
            m.close(key)
        elif not m.is_open(key):
            m.open(key, open_tag, close_tag)


def render_inline(tokens: Sequence[Token], base_font: str, ctx: InlineContext,
                  hard_breaks: bool = True) -> InlineResult:
    """Markup for one inline run (a paragraph, heading or table cell)."""
    m = _Markup()
    images: list[ImageRef] = []
    plain: list[str] = []
    for tok in tokens:
        kind = tok.type
        if kind == "text":
            _text(tok.content, m, base_font, ctx, images, plain)
        elif kind == "softbreak":
            m.parts.append("<br/>" if hard_breaks else " ")
            plain.append(" ")
        elif kind == "hardbreak":
            m.parts.append("<br/>")
            plain.append(" ")
        elif kind == "strong_open":
            m.open("b", "<b>", "</b>")
        elif kind == "strong_close":
            m.close("b")
        elif kind == "em_open":
            m.open("i", "<i>", "</i>")
        elif kind == "em_close":
            m.close("i")
        elif kind == "s_open":
            m.open("s", "<strike>", "</strike>")
        elif kind == "s_close":
            m.close("s")
        elif kind == "code_inline":
            mono = ctx.fonts.mono
            m.parts.append(f'<font face="{mono}" size="{ctx.code_size:.1f}" '
                           f'backcolor="{ctx.code_color}">'
                           f"{text_markup(tok.content, mono, ctx)}</font>")
            plain.append(tok.content)
        elif kind == "link_open":
            href = str(tok.attrs.get("href", ""))
            if is_safe_url(href) and not m.is_open("a"):
                ctx.links.append(href)
                m.open("a", f'<a href={quoteattr(href)} color="{ctx.link_color}">', "</a>")
        elif kind == "link_close":
            m.close("a")
        elif kind == "image":
            src = str(tok.attrs.get("src", ""))
            alt = "".join(c.content for c in (tok.children or []) if c.type == "text")
            images.append(ImageRef(target=src, alt=alt or src, wiki=False))
        elif kind == "html_inline":
            _html_inline(tok.content, m, ctx)
    return InlineResult(markup=m.finish(), plain="".join(plain), images=images,
                        cjk=has_cjk("".join(plain)))
