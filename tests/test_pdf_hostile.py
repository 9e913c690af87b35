"""PDF exporter: hostile and random markdown never crashes it and still yields a PDF."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from vault_tools.pdf import export_pdf

HOSTILE = {
    "unclosed_fence": "# Title\n\n```python\ndef f(:\n  <b>&amp; unclosed fence marker\n",
    "table_10000_rows": "| a | b |\n|---|---|\n"
    + "".join(f"| r{i} | v{i} |\n" for i in range(10_000)),
    "line_5mb": "x" * 5_000_000,
    "nesting_200_quotes": ">" * 200 + " deep quote marker\n",
    "nesting_200_lists": "".join("  " * i + f"- item{i}\n" for i in range(200)),
    "nesting_mixed": "".join("  " * i + ("- " if i % 2 else "> ") + "x\n" for i in range(200)),
    "raw_html": "<div><script>alert('pwned')</script><style>p{}</style>"
    "<p>Hello <b>html marker</b></p></div>\n\n<img src=x onerror=alert(1)>\n\n"
    "text <span style='x'>in</span> <br> line <iframe src='x'></iframe>\n",
    "control_and_nul": "a\x00b\x01c\x07\x1b[31m red \x7f end marker\n\n# Head\x00ing\n",
    "markup_injection": "<para> & </b> <font face='x'> ]]> &#0; &bogus; "
    "<a href='javascript:alert(1)'>x</a> [y](javascript:alert(1)) </para></font>",
    "wide_table": "|" + "|".join(f"c{i}" for i in range(60)) + "|\n|" + "---|" * 60
    + "\n|" + "|".join("v" * 30 for _ in range(60)) + "|\n",
    "huge_cell": "| a |\n|---|\n| " + "long text " * 20_000 + " |\n",
    "long_code": "```\n" + "\n".join(f"line {i}" for i in range(3000)) + "\n```\n",
    "long_callout": "> [!note] Big\n" + "".join(f"> para {i} " + "w " * 60 + "\n>\n"
                                                for i in range(200)),
    "heading_jumps": "###### h6\n\n# h1\n\n#### h4\n\n## h2\n",
    "bad_frontmatter": "---\ntitle: [unclosed\n: : :\n---\nbody marker",
    "frontmatter_only": "---\ntitle: x\nduration: not-a-number\n---\n",
    "empty": "",
    "odd_cards": "Q::\n::A\n:::\n?\n??\n{{c1::x}} and {{c2::y::hint}}\n",
    "odd_callouts": "> [!]\n> [!x]+\n> [!warning] **bold** title\n>> [!note] nested\n>> body\n",
    "odd_images": "![[missing.png]] ![x](/etc/passwd) ![y](https://example.com/a.png) "
    "![[../../etc/hosts.png|999999]] ![[note embed]]",
    "surrogates_and_bidi": "text \ud800 \u202e reversed \u200b zero-width \ufeff bom",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_never_crashes(tmp_path: Path, name: str) -> None:
    out = tmp_path / "PDF" / f"{name}.pdf"
    report = export_pdf(HOSTILE[name], out, vault_root=tmp_path, note_path=Path("n.md"))
    reader = PdfReader(str(out))
    assert report.pages == len(reader.pages) >= 1
    assert not any("layout failed" in w for w in report.warnings), report.warnings


def test_hostile_content_degrades_visibly(tmp_path: Path) -> None:
    out = tmp_path / "h.pdf"
    report = export_pdf(HOSTILE["line_5mb"], out)
    assert any("cut" in w for w in report.warnings)
    text = export_text(tmp_path, HOSTILE["raw_html"])
    assert "html marker" in text and "pwned" not in text and "p{}" not in text
    text = export_text(tmp_path, HOSTILE["control_and_nul"])
    assert "end marker" in text and "\x00" not in text and "Heading" in text
    text = export_text(tmp_path, HOSTILE["markup_injection"])
    # unknown tags vanish like in a browser; the text around them stays literal
    assert "&bogus;" in text and "]]>" in text and "javascript" in text
    text = export_text(tmp_path, HOSTILE["nesting_200_lists"])
    assert "item0" in text and "item150" in text and "item199" in text
    text = export_text(tmp_path, HOSTILE["nesting_200_quotes"])
    assert "deep quote marker" in text
    text = export_text(tmp_path, HOSTILE["unclosed_fence"])
    assert "unclosed fence marker" in text


def export_text(tmp_path: Path, markdown: str) -> str:
    out = tmp_path / "t.pdf"
    export_pdf(markdown, out)
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(str(out)).pages).split())


_PIECES = st.sampled_from([
    "# ", "## ", "- ", "1. ", "> ", "> [!note] ", "```", "~~~", "|", "---", "==", "**",
    "*", "~~", "`", "[[", "]]", "![[", "[", "](", ")", "::", "?", "\n", "\n\n", "  ",
    "<b>", "</i>", "<!--SR:!2026-01-01,3,250-->", "&", "<", ">", "&amp;", "\t", "\x00",
    "Ωμέγα", "Привет", "日本", "\U0001F600", "https://example.com/x",
])
_MARKDOWN = st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=40).map("".join)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(markdown=_MARKDOWN)
def test_fuzz_markdown_to_pdf(tmp_path: Path, markdown: str) -> None:
    out = tmp_path / "fuzz.pdf"
    report = export_pdf(markdown, out)
    assert report.pages >= 1
    assert out.read_bytes().startswith(b"%PDF-")
    assert not any("layout failed" in w for w in report.warnings), (markdown, report.warnings)
