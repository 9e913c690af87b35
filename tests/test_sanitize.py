"""Sanitizer: a corpus of hostile snippets, safe markdown kept byte-identical, and
property tests against an independent oracle (render with markdown-it, parse the HTML
with the standard library, look for anything executable)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from vault_tools.sanitize import sanitize_markdown

# ---------------------------------------------------------------- oracle

_BAD_TAGS = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "applet",
    "frame",
    "frameset",
    "base",
    "meta",
    "link",
    "noembed",
    "noframes",
    "portal",
}
_EXEC_LANGS = {
    "dataviewjs",
    "templater",
    "js-engine",
    "meta-bind-js-view",
    "meta-bind-button",
    "button",
}


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # behave like a permissive renderer
    return md


_MD = _renderer()


def _url_runs_code(value: str) -> bool:
    compact = re.sub(r"[\x00-\x20\x7f-\x9f]", "", value).lower()
    if compact.startswith(("javascript:", "vbscript:", "livescript:")):
        return True
    return compact.startswith("data:") and not compact.startswith("data:image/png")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BAD_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "srcdoc":
                self.problems.append(f"{tag}[{name}]")
            elif value is not None and _url_runs_code(value):
                self.problems.append(f"{tag}[{name}={value!r}]")

    handle_startendtag = handle_starttag


def executable_problems(markdown: str) -> list[str]:
    """Everything in ``markdown`` that could run code in Obsidian, by an independent route."""
    problems: list[str] = []
    if "<%" in markdown:
        problems.append("templater tag")
    for token in _MD.parse(markdown):
        if token.type == "fence" and token.info.split()[:1]:
            if token.info.split()[0].lower() in _EXEC_LANGS:
                problems.append(f"fence {token.info}")
        for child in token.children or []:
            if child.type == "code_inline" and child.content.strip().startswith("$="):
                problems.append("inline dataview js")
    rendered = _MD.render(markdown)
    collector = _Collector()
    collector.feed(rendered)
    collector.close()
    problems += collector.problems
    for tag in re.findall(r"<[A-Za-z][^>]*>", rendered):
        name = re.match(r"<([^\s/>]+)", tag)
        if name and name.group(1).lower() in _BAD_TAGS:
            problems.append(f"raw {tag!r}")
        if re.search(r"[\s/\"']on[a-z]+\s*=", tag, re.IGNORECASE):
            problems.append(f"handler in {tag!r}")
    return problems


def test_oracle_sees_hostile_content() -> None:
    assert executable_problems("<img src=x onerror=alert(1)>")
    assert executable_problems("[a](javascript:alert(1))")
    assert executable_problems("```dataviewjs\ndv.x()\n```")
    assert not executable_problems("plain *text* and `<script>` in code")


# ---------------------------------------------------------------- hostile corpus

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<script\n>alert(1)</script\n>",
    "text <script>alert(1)",
    "<scr<script></script>ipt>alert(1)</script>",
    "<style>body{display:none}</style>",
    '<iframe src="https://evil.example"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>">',
    '<object data="evil.swf"></object>',
    '<embed src="evil.swf">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<base href=javascript:alert(1)//>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)">',
    "<img/src=x/onerror=alert(1)>",
    '<img src="x"onerror="alert(1)">',
    "<img src=x ONERROR = alert(1)>",
    "<svg onload=alert(1)>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" &#14; javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click]( javascript:alert(document.cookie))",
    "[click](javascript\\:alert(1))",
    "[click](java&#115;cript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    "![img](javascript:alert(1))",
    "[ref]: javascript:alert(1)\n\n[click][ref]",
    "[ref]:\n  <javascript:alert(1)>\n\n[click][ref]",
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "```dataviewjs\ndv.paragraph(app.vault.adapter.basePath)\n```",
    "~~~ dataviewjs\ndv.el('b', 'x')\n~~~",
    "> ```dataviewjs\n> dv.paragraph(1)\n> ```",
    "- item\n\n  ```DataviewJS\n  dv.paragraph(1)\n  ```",
    "```templater\n<% tp.file.title %>\n```",
    "```js-engine\nreturn engine.markdown.create('x')\n```",
    "Inline `$= dv.current().file.name` query",
    "Inline ``$= dv.pages().length`` query",
    "<% tp.system.prompt('x') %>",
    "<%* await app.vault.delete(tp.file.find_tfile('x')) %>",
    "<%+ tp.date.now() %> and <%_ x _%> and <%- y -%>",
    "```python\n<%* app.vault.adapter.remove('x') %>\n```",
    "<% unclosed templater",
    "<<%%>% nested %>",
    "<div>\n`<script>alert(1)</script>`\n</div>",
    "<div>\n<img src=x onerror=alert(1)>\n\n</div>",
    "<details><summary onclick=alert(1)>x</summary>y</details>",
    "`a|b` <img src=x onerror=alert(1)> `c`",
    "- `a\n- <img src=x onerror=alert(1)>\n- b`",
    "| a | b |\n|---|---|\n| `x | <img src=x onerror=alert(1)> | y` |",
    "<!-- ` --> <img src=x onerror=alert(1)> `",
    "[[note`]] <img src=x onerror=alert(1)> `",
    "\\`<img src=x onerror=alert(1)>`",
    'a <b c="x\n\n<img src=x onerror=alert(1)>">',
    '<b "q" title="<img src=x onerror=alert(1)>">',
    "<img src=x onerror=alert(1)\n\nnext paragraph",
    "    <script>indented but at top level after a paragraph?</script>",
    "para\n    <script>alert(1)</script>",
    "```\ncode\n```\n<script>alert(1)</script>",
    "> ```\n<script>alert(1)</script>\n```",
    "1. x\n   ```\n<script>alert(1)</script>\n```",
    ":<!a\\<script>",
    '<b title="\\<img src=x onerror=alert(1)>">',
    "<a href='obsidian://advanced-uri?vault=v&commandid=app:delete-file'>x</a>",
]


@pytest.mark.parametrize("snippet", HOSTILE)
def test_hostile_snippet_is_neutralised(snippet: str) -> None:
    for wrapped in (snippet, f"# Title\n\nSome text.\n\n{snippet}\n\nMore text.\n"):
        clean = sanitize_markdown(wrapped)
        assert executable_problems(clean) == []
        assert sanitize_markdown(clean) == clean


def test_hostile_corpus_is_hostile_before_sanitising() -> None:
    # Guards the corpus itself: most snippets must trip the oracle unsanitised.
    hostile = [s for s in HOSTILE if executable_problems(s)]
    assert len(hostile) >= len(HOSTILE) * 3 // 4


def test_specific_removals() -> None:
    assert sanitize_markdown("a <script>x()</script> b") == "a  b"
    assert sanitize_markdown("[t](javascript:alert(1)) ok") == "[t](#) ok"
    assert sanitize_markdown('<img src="x" onerror="y()">') == '<img src="x" >'
    assert sanitize_markdown("before\n```dataviewjs\ndv.x()\n```\nafter") == "before\nafter"
    assert sanitize_markdown("x `$= dv.x()` y") == "x ` dv.x()` y"
    assert sanitize_markdown("Hi <% tp.file.title %>!") == "Hi !"


# ---------------------------------------------------------------- safe markdown

SAFE_BLOCKS = [
    "---\ntitle: Working Memory\ntags: [psychology]\n---",
    "# Working Memory\n\nA *limited* capacity **store** with ~~four~~ chunks.",
    "## Key ideas\n\n- item one\n- item [[Cognitive Load|load]]\n  - nested `code`",
    "> [!note] Callout title\n> Body with ==highlight== and a [[Wikilink]].",
    "> [!warning]- Folded\n> > nested quote",
    "```python\nprint('<script>alert(1)</script>')\nx = {'onclick': 1}\n```",
    '```html\n<button onclick="go()">Go</button>\n<script src="app.js"></script>\n```',
    "~~~js\nconst a = `$= template`;\nlocation.href = 'javascript:void(0)';\n~~~",
    "    indented code: x = [1, 2]",
    "Inline `<img onerror=x>` and ``a `tick` b`` and `$x$`.",
    "| Term | Meaning |\n|------|---------|\n| RAM | memory [[Storage]] |\n| `a` | b |",
    "What is working memory?::A short-term store of about four chunks.",
    "Question line\n?\nAnswer line\n<!--SR:!2024-05-01,3,250-->",
    "Multi::line::card <!--SR:!2024-05-01,3,250!2024-05-03,1,230-->",
    "$$\n\\frac{a<b}{c>d}\n$$",
    "Inline math $a < b$ and $E = mc^2$.",
    "Timestamp [1:15](https://youtu.be/abc123def45?t=75) and <https://example.com>.",
    "![Diagram](attachments/diagram.png) and ![[Embedded note]]",
    "A footnote[^1].\n\n[^1]: The note.",
    '[ref]: https://example.com/page "Title"',
    "Text with <kbd>Ctrl</kbd>+<kbd>C</kbd> and <mark>marked</mark> and <br>.",
    '<details><summary>Click</summary>\n\nHidden <a href="https://x.org">link</a>.\n</details>',
    "%% an Obsidian comment %%",
    "Task list:\n- [ ] todo\n- [x] done",
    "Tags #memory #psych/learning and a block ref ^abc123",
    "Ökonomie und Теория and 学习 with émojis 🧠.",
    "a<b and c>d in prose, 5 < 6, x<y.",
    "Field:: value\n[inline:: field] (hidden:: field)",
    "***\n\nSetext\n------",
    "<!-- plain comment -->",
    "Dollar prices $5 and $10 next to `code`.",
]


@pytest.mark.parametrize("block", SAFE_BLOCKS)
def test_safe_block_is_unchanged(block: str) -> None:
    assert sanitize_markdown(block) == block


def test_indented_code_is_protected_only_where_it_is_code() -> None:
    code = "Paragraph.\n\n    <iframe src=x></iframe>\n"
    assert sanitize_markdown(code) == code
    # After a list item the same line is a live paragraph of the item, not code.
    live = "- item\n\n    <iframe src=x></iframe>\n"
    assert sanitize_markdown(live) == "- item\n\n    \n"


def test_safe_document_is_unchanged() -> None:
    document = "\n\n".join(SAFE_BLOCKS) + "\n"
    assert sanitize_markdown(document) == document


# ---------------------------------------------------------------- properties

_PIECES = [
    "<script>",
    "</script>",
    "<img src=x onerror=alert(1)>",
    "onerror=",
    ' onclick="x"',
    "javascript:",
    "JaVa&#115;cript:alert(1)",
    "](",
    "[",
    "]",
    "(",
    ")",
    "]: ",
    "`",
    "``",
    "```",
    "```dataviewjs\n",
    "~~~",
    "$=",
    "$",
    "<%",
    "%>",
    "<",
    ">",
    "<a href=",
    '"',
    "'",
    "<iframe>",
    "<!--",
    "-->",
    "[[",
    "]]",
    "|",
    "\n",
    "\n\n",
    "    ",
    "> ",
    "- ",
    "# ",
    "\\",
    "data:text/html,",
    "<style>",
    "<div>",
    "</div>",
    "<svg onload=x>",
    "=",
    " ",
    "x",
    "Memory",
    "==",
    "::",
    "%%",
]

hostile_documents = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(alphabet="<>`[]()!:=$%\\|\"' \n-*#ax", max_size=8)),
    max_size=40,
).map("".join)

safe_documents = st.lists(st.sampled_from(SAFE_BLOCKS), min_size=1, max_size=8).map("\n\n".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_documents)
def test_no_executable_content_survives(document: str) -> None:
    clean = sanitize_markdown(document)
    assert executable_problems(clean) == []
    assert sanitize_markdown(clean) == clean


@settings(max_examples=150, deadline=None)
@given(safe_documents)
def test_safe_markdown_is_unchanged(document: str) -> None:
    assert sanitize_markdown(document) == document


@settings(max_examples=150, deadline=None)
@given(safe_documents, st.sampled_from(HOSTILE))
def test_hostile_inside_safe_document(document: str, snippet: str) -> None:
    clean = sanitize_markdown(document + "\n\n" + snippet + "\n\n" + document)
    assert executable_problems(clean) == []
    assert clean.startswith(document)
