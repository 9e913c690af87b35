"""Remove executable Obsidian content from generated (untrusted) markdown.

This module owns the rule "nothing the daemon writes can run code in the user's
Obsidian". Generated text comes from a model fed with third-party transcripts, so it is
treated as hostile: Dataview JS (```dataviewjs blocks, inline `` `$= ...` ``), Templater
tags (``<% ... %>``, which Templater may run on new files), ``<script>``, ``<iframe>``,
``<object>``, ``<embed>``, ``<style>`` and similar elements, ``on*=`` event handlers on
any HTML tag, and ``javascript:`` / ``vbscript:`` / ``data:text/html`` URLs in markdown
links, reference definitions, autolinks and HTML attributes are removed.

It also owns "generated text cannot create a region vaultd edits": every vaultd
region marker (an Obsidian comment ``%% vaultd:... %%``, in any spacing or case) is
removed, the whole line when it stood alone, and a ``%%`` left unbalanced outside
code (which would hide everything after it, the Related section included) is removed
too (:func:`strip_region_markers`). The region itself is recognised by a secret tag
(:mod:`vault_tools.related`); this is the second, independent layer.

Everything else stays byte-identical: code blocks (a ```html block may show a
``<script>`` tag, it is inert text there), inline code, callouts, wikilinks, tables,
``==highlight==``, ``Q::A`` flashcards, ``<!--SR:...-->`` comments and math.

How: a cheap scan of the whole text, treating everything as potentially live HTML,
decides whether anything needs removing at all (the common case is "no": the text is
returned untouched). Only then is the block structure parsed with markdown-it (the
CommonMark parser the project already depends on) so code blocks are protected exactly
where a CommonMark renderer would treat them as code. Inside paragraphs, inline code
spans are protected only where their extent is unambiguous; any doubt errs toward
sanitising. Passes repeat until nothing changes, so the result is idempotent and
removals cannot splice together new executable content.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from markdown_it import MarkdownIt

__all__ = ["EXECUTABLE_FENCE_LANGUAGES", "is_dangerous_url", "sanitize_markdown",
           "strip_region_markers"]

#: Fenced-code languages that a common plugin executes instead of displaying.
EXECUTABLE_FENCE_LANGUAGES = frozenset(
    {"dataviewjs", "templater", "js-engine", "meta-bind-js-view", "meta-bind-button", "button"}
)
# Removed together with their content; their closing tags are removed too.
_ELEMENTS_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "applet", "frameset", "noembed", "noframes"}
)
# Removed as single tags.
_VOID_ELEMENTS = frozenset({"embed", "frame", "base", "meta", "link", "portal"})

_WS = " \t\n\r\f"
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_TRIGGER_RAW = re.compile(r"[<`\]]")
_TRIGGER_INLINE = re.compile(r"[<`\]\\\[$%]")
_BACKTICKS = re.compile(r"`+")
_DV_INLINE_JS = re.compile(r"\s*(\$=)")
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*)>")
_LINE_BREAK = re.compile(r"\r\n?|\n")
_BLANK_LINE = re.compile(r"\n[ \t>]*(?:\r\n?|\n)")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f-\x9f]+")
_SAFE_DATA_URL = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp|avif)[;,]")
_DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "livescript:", "obsidian://advanced-uri")
_STYLE_BAD = ("javascript:", "vbscript:", "expression(", "-moz-binding", "behavior:", "url(")
_TEMPLATER_TAG = re.compile(r"<%[\s\S]*?%>")
_TEMPLATER_OPEN = re.compile(r"<%+")
_EXEC_FENCE_HINT = re.compile(
    r"(?:`{3,}|~{3,})[ \t]*\{?[ \t]*(?:"
    + "|".join(re.escape(lang) for lang in sorted(EXECUTABLE_FENCE_LANGUAGES))
    + r"|[^\n]*[&\\])",
    re.IGNORECASE,
)
_DV_HINT = re.compile(r"`\s*\$=")
# A line that could make its paragraph a GFM table (pipes split cells before code spans).
_TABLE_DELIMITER = re.compile(r"^[ \t>]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-*:?[ \t]*)*$", re.M)

_Edit = tuple[int, int, str]

# vaultd's region markers in any spacing or case: %%vaultd:related%%, %% VAULTD : x %%
_REGION_MARKER = re.compile(r"%%[^\S\n]*vaultd[^\S\n]*:[^\n]*?%%", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def sanitize_markdown(text: str) -> str:
    """Return ``text`` without executable Obsidian content; safe markdown is unchanged.

    Idempotent: ``sanitize_markdown(sanitize_markdown(t)) == sanitize_markdown(t)``.
    """
    # Each pass either leaves the text unchanged or lowers (count of "<", length)
    # lexicographically, so the loop ends; the result is a fixed point, hence idempotent.
    while True:
        cleaned = _one_pass(text)
        if cleaned == text:
            return text
        text = cleaned


def is_dangerous_url(raw: str) -> bool:
    """True when a link target (markdown or HTML attribute text) would run code on click."""
    value = html.unescape(_MD_ESCAPE.sub(r"\1", raw))
    value = _URL_IGNORED.sub("", value).lower()
    if value.startswith(_DANGEROUS_SCHEMES):
        return True
    return value.startswith("data:") and not _SAFE_DATA_URL.match(value)


def strip_region_markers(text: str) -> str:
    """``text`` without vaultd region markers and without an unbalanced ``%%``.

    A marker alone on its line takes the line with it. ``%%`` inside fenced code is
    not a comment and is left alone; outside, comments pair up in order, and an odd
    one out (which would hide the rest of the note) is removed.
    """
    if "%%" not in text:
        return text
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        cleaned = _REGION_MARKER.sub("", line)
        if cleaned != line and not cleaned.strip():
            continue  # the marker was the whole line
        out.append(cleaned)
    text = "".join(out)
    last: tuple[int, int] | None = None  # (line, column) of an unpaired %%
    lines = text.splitlines(keepends=True)
    fence: str | None = None
    for n, line in enumerate(lines):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        for hit in re.finditer("%%", line):
            last = None if last is not None else (n, hit.start())
    if last is None:
        return text
    n, col = last
    lines[n] = lines[n][:col] + lines[n][col + 2:]
    return "".join(lines)


def _one_pass(text: str) -> str:
    without_markers = strip_region_markers(text)
    if without_markers != text:
        return without_markers
    without_templater = _TEMPLATER_OPEN.sub("<", _TEMPLATER_TAG.sub("", text))
    if without_templater != text:
        return without_templater
    # Fast path: scan everything as if it were live HTML. Code protection only ever
    # removes work from this scan, so no edits here means no edits at all.
    raw_edits: list[_Edit] = []
    _scan(text, 0, len(text), False, raw_edits)
    if not raw_edits and not _DV_HINT.search(text) and not _EXEC_FENCE_HINT.search(text):
        return text
    return _structured_pass(text)


@lru_cache(maxsize=1)
def _block_parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark")
    parser.core.ruler.disable(["inline", "text_join"])  # block structure is enough
    return parser


def _structured_pass(text: str) -> str:
    starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]

    def offset(line: int) -> int:
        return starts[line] if line < len(starts) else len(text)

    kinds: list[tuple[int, int, str]] = []  # (first line, end line, kind)
    for token in _block_parser().parse(text):
        if token.map is None:
            continue
        first, end = token.map
        if token.type == "fence":
            raw_info = text[offset(first) : offset(first + 1)].lstrip(" \t>-*+0123456789.)")
            raw_info = raw_info.lstrip("`~").strip()
            langs = {token.info.split()[0].lower() if token.info.split() else ""}
            langs.add(raw_info.split()[0].lower() if raw_info.split() else "")
            kinds.append((first, end, "exec" if langs & EXECUTABLE_FENCE_LANGUAGES else "code"))
        elif token.type == "code_block":
            kinds.append((first, end, "code"))
        elif token.type == "html_block":
            kinds.append((first, end, "html"))
        elif token.type == "inline":
            chunk = text[offset(first) : offset(end)]
            kinds.append((first, end, "raw" if _TABLE_DELIMITER.search(chunk) else "inline"))
    kinds.sort()

    exec_blocks = [(offset(a), offset(b), "") for a, b, kind in kinds if kind == "exec"]
    if exec_blocks:
        return _apply(text, exec_blocks)

    edits: list[_Edit] = []
    position = 0
    for first, end, kind in kinds:
        start, stop = offset(first), offset(end)
        if start < position:  # nested token already covered (defensive)
            continue
        if start > position:
            _scan(text, position, start, False, edits)
        if kind != "code":
            _scan(text, start, stop, kind == "inline", edits)
        position = stop
    _scan(text, position, len(text), False, edits)
    return _apply(text, edits)


def _apply(text: str, edits: list[_Edit]) -> str:
    if not edits:
        return text
    out: list[str] = []
    position = 0
    for start, stop, replacement in sorted(edits):
        if start < position:  # overlaps an earlier edit; a later pass re-checks
            continue
        out.append(text[position:start])
        out.append(replacement)
        position = stop
    out.append(text[position:])
    return "".join(out)


def _scan(s: str, start: int, end: int, inline: bool, edits: list[_Edit]) -> None:
    """Collect edits for ``s[start:end]``.

    ``inline`` means the range is one CommonMark paragraph/heading: backslash escapes and
    code spans count there. Otherwise every character is treated as potentially live HTML.
    """
    trigger = _TRIGGER_INLINE if inline else _TRIGGER_RAW
    trust_code_spans = inline
    no_code_before = start  # code spans may not open before this (inside HTML, math...)
    i = start
    while True:
        match = trigger.search(s, i, end)
        if match is None:
            return
        i = match.start()
        c = s[i]
        if c == "\\":  # a markdown escape, except inside raw HTML where it is literal
            escapes = i >= no_code_before and i + 1 < end and s[i + 1] in _ASCII_PUNCT
            i += 2 if escapes else 1
        elif c == "`":
            run = _BACKTICKS.match(s, i, end)
            assert run is not None
            n = run.end() - i
            dv = _DV_INLINE_JS.match(s, run.end(), end)
            if dv:
                edits.append((dv.start(1), dv.end(1), ""))
            if i < no_code_before:
                # Renderers may disagree on whether this run is literal; from here on the
                # pairing of backticks is uncertain, so no later span is trusted as code.
                trust_code_spans = False
            if trust_code_spans:
                close = _code_span_end(s, run.end(), n, end)
                if close is not None:
                    i = close
                    continue
            i += n
        elif c == "]":
            if i + 1 < end and s[i + 1] in "(:":
                _check_destination(s, i + 2, end, edits)
            i += 1
        elif c == "[":
            if s.startswith("[[", i):
                no_code_before = max(no_code_before, _shadow(s, i + 2, "]]", end))
            i += 1
        elif c == "$":
            no_code_before = max(no_code_before, _shadow(s, i + 1, "$", end))
            i += 1
        elif c == "%":
            if s.startswith("%%", i):
                no_code_before = max(no_code_before, _shadow(s, i + 2, "%%", end))
            i += 1
        else:  # "<"
            i, hidden_until = _handle_angle(s, i, end, inline, edits)
            no_code_before = max(no_code_before, hidden_until)


def _shadow(s: str, start: int, closer: str, end: int) -> int:
    found = s.find(closer, start, end)
    return found + len(closer) if found >= 0 else start


def _code_span_end(s: str, start: int, n: int, end: int) -> int | None:
    """End of the code span opened by ``n`` backticks before ``start``, or None."""
    limit = end
    blank = _BLANK_LINE.search(s, start, end)
    if blank:
        limit = blank.start()
    for run in _BACKTICKS.finditer(s, start, limit):
        if run.end() - run.start() == n:
            return run.end()
    return None


def _check_destination(s: str, start: int, end: int, edits: list[_Edit]) -> None:
    """Neutralise a link destination that starts at or after ``start`` (after ``](``/``]:``)."""
    q = start
    while q < end and s[q] in " \t":
        q += 1
    if q < end and s[q] in "\r\n":
        q += 2 if s.startswith("\r\n", q) else 1
        while q < end and s[q] in " \t":
            q += 1
    if q >= end:
        return
    if s[q] == "<":
        r = q + 1
        while r < end and s[r] not in "<>\r\n":
            r += 2 if s[r] == "\\" else 1
        r = min(r, end)
        value, stop = s[q + 1 : r], (r + 1 if r < end and s[r] == ">" else r)
    else:
        r, depth = q, 0
        while r < end:
            ch = s[r]
            if ch == "\\" and r + 1 < end and s[r + 1] in _ASCII_PUNCT:
                r += 2
                continue
            if ch <= " " or ch == "\x7f":
                break
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            r += 1
        value, stop = s[q:r], r
    if value and is_dangerous_url(value):
        edits.append((q, stop, "#"))


def _handle_angle(s: str, i: int, end: int, inline: bool, edits: list[_Edit]) -> tuple[int, int]:
    """Handle a ``<`` at ``i``.

    Returns where scanning continues and the end of a raw-HTML construct (tag, comment,
    ...) whose inside is not markdown, so no code span may open before it (0: none).
    """
    if s.startswith(("<!-->", "<!--->"), i):
        return i + 1, 0
    for opener, closer in (("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"), ("<!", ">")):
        if s.startswith(opener, i):
            return i + 1, _shadow(s, i + len(opener), closer, end)
    autolink = _AUTOLINK.match(s, i, end)
    if autolink:
        if is_dangerous_url(autolink.group(1)):
            edits.append((i, autolink.end(), ""))
        return autolink.end(), 0
    tag = _parse_tag(s, i, end)
    if tag is None:
        return i + 1, 0
    stop, name, attributes, terminated = tag
    if not terminated:
        # Not a tag for CommonMark inside a paragraph; raw HTML elsewhere, where a renderer
        # would glue the following output onto it. Make it plain text there.
        if not inline:
            edits.append((i, i + 1, "&lt;"))
        return i + 1, 0
    closing = s[i + 1] == "/"
    if name in _ELEMENTS_WITH_CONTENT and not closing:
        close = re.compile(r"</" + re.escape(name) + r"[\s/>]", re.IGNORECASE).search(s, stop, end)
        if close:
            gt = s.find(">", close.end() - 1, end)
            stop = gt + 1 if gt >= 0 else end
        edits.append((i, stop, ""))
        return stop, 0
    if name in _ELEMENTS_WITH_CONTENT or name in _VOID_ELEMENTS:
        edits.append((i, stop, ""))
        return stop, 0
    for a_start, a_stop, a_name, value in attributes:
        if _bad_attribute(a_name.lower(), value):
            edits.append((a_start, a_stop, ""))
    # Keep scanning inside the tag (a renderer may disagree about where it ends), but a
    # backtick inside it cannot open a code span.
    return i + 1, stop


def _bad_attribute(name: str, value: str | None) -> bool:
    if name.startswith("on") or name == "srcdoc":
        return True
    if value is None:
        return False
    if name == "style":
        compact = _URL_IGNORED.sub("", html.unescape(value)).lower()
        return "\\" in compact or any(bad in compact for bad in _STYLE_BAD)
    return is_dangerous_url(value)


_Attribute = tuple[int, int, str, str | None]


def _parse_tag(s: str, i: int, end: int) -> tuple[int, str, list[_Attribute], bool] | None:
    """Tokenise an HTML start or end tag at ``i`` the way a browser does.

    Returns (end index, lower-case name, attributes as (start, stop, name, value),
    terminated) or None when ``<`` does not open a tag.
    """
    j = i + 1
    if j < end and s[j] == "/":
        j += 1
    if j >= end or not (s[j].isascii() and s[j].isalpha()):
        return None
    k = j
    while k < end and s[k] not in " \t\n\r\f/>":
        k += 1
    name = s[j:k].lower()
    attributes: list[_Attribute] = []
    p = k
    while p < end:
        c = s[p]
        if c in _WS or c == "/":
            p += 1
            continue
        if c == ">":
            return p + 1, name, attributes, True
        a_start = p
        p += 1  # the first character may be "=" (a parse error browsers accept)
        while p < end and s[p] not in " \t\n\r\f/>=":
            p += 1
        a_name = s[a_start:p]
        q = p
        while q < end and s[q] in _WS:
            q += 1
        if q >= end or s[q] != "=":
            attributes.append((a_start, p, a_name, None))
            continue
        q += 1
        while q < end and s[q] in _WS:
            q += 1
        if q < end and s[q] in "\"'":
            close = s.find(s[q], q + 1, end)
            if close < 0:
                return end, name, attributes, False
            value, p = s[q + 1 : close], close + 1
        else:
            r = q
            while r < end and s[r] not in " \t\n\r\f>":
                r += 1
            value, p = s[q:r], r
        attributes.append((a_start, p, a_name, value))
    return end, name, attributes, False
