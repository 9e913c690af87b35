"""PDF exporter: what a reader finds in the PDF (text, links, outline, title block)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from vault_tools.pdf import PdfReport, content_hash, export_pdf, load_fonts

NOTE = """---
type: study-note
title: "Attention, Explained"
source: https://www.youtube.com/watch?v=abc123XYZ_0
video_id: abc123XYZ_0
channel: Deep Learning Channel
duration: 3725
published: 2024-05-01
created: 2024-06-02
tags: [ml, attention]
---

# Attention, Explained

## Overview Heading

Transformers use **self-attention** with *weights*, ~~recurrence~~, `inline code` and
==a highlight==. See [[Neural Networks|the NN note]] and [[Backprop#Chain rule]].
Jump to [1:15](https://youtu.be/abc123XYZ_0?t=75) or read <https://example.org/paper>.

### Steps Heading

1. Embed alpha tokens
2. Compute beta scores
   - nested gamma item
     - deeper delta item
3. Normalise epsilon

- [ ] Rewatch zeta section
- [x] Read eta paper

| Term | Meaning | Time |
|:--|:--|--:|
| Query | looks for theta | 2:05 |
| Key | offers iota | 3:10 |

> [!tip]- Folded Callout Title
> Callout body kappa text.

> Plain quote lambda.

```python
def attention(q, k, v):
    return softmax(q @ k.T) @ v
```

---

#### Deep Heading Four
"""


def export(tmp_path: Path, markdown: str, name: str = "note", **kw: object) -> tuple[
        PdfReport, PdfReader, str]:
    out = tmp_path / f"{name}.pdf"
    report = export_pdf(markdown, out, **kw)  # type: ignore[arg-type]
    reader = PdfReader(str(out))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return report, reader, " ".join(text.replace("\u00a0", " ").split())


def link_uris(reader: PdfReader) -> list[str]:
    uris = []
    for page in reader.pages:
        for annot in page.get("/Annots") or []:
            obj = annot.get_object()
            action = obj.get("/A")
            if action is not None and "/URI" in action:
                uris.append(str(action["/URI"]))
    return uris


def outline_titles(reader: PdfReader) -> list[str]:
    titles: list[str] = []

    def walk(items: list) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                titles.append(item.title)

    walk(reader.outline)
    return titles


def test_every_block_reaches_the_pdf(tmp_path: Path) -> None:
    report, reader, text = export(tmp_path, NOTE, note_path=Path("Study Notes/a.md"))
    assert report.pages == len(reader.pages) >= 1
    for needle in [
        "Overview Heading", "Steps Heading", "Deep Heading Four",
        "Embed alpha tokens", "Compute beta scores", "nested gamma item",
        "deeper delta item", "Normalise epsilon", "Rewatch zeta section", "Read eta paper",
        "Term", "Meaning", "Query", "looks for theta", "2:05", "offers iota", "3:10",
        "Folded Callout Title", "Callout body kappa text.", "Plain quote lambda.",
        "def attention(q, k, v):", "return softmax(q @ k.T) @ v",
        "self-attention", "weights", "recurrence", "inline code", "a highlight",
        "the NN note", "Backprop › Chain rule", "1:15", "https://example.org/paper",
    ]:
        assert needle in text, needle
    for raw in ("[[", "]]", "==", "[!tip]", "**", "~~", "- [ ]", "[x]"):
        assert raw not in text, raw


def test_title_block_from_frontmatter(tmp_path: Path) -> None:
    _, reader, text = export(tmp_path, NOTE)
    assert "STUDY NOTE" in text
    assert text.count("Attention, Explained") >= 1
    assert "Deep Learning Channel" in text
    assert "Duration 1:02:05" in text
    assert "Published 2024-05-01" in text and "Created 2024-06-02" in text
    assert "https://www.youtube.com/watch?v=abc123XYZ_0" in text
    assert "type: study-note" not in text and "video_id" not in text
    assert reader.metadata is not None and reader.metadata.title == "Attention, Explained"


def test_links_are_clickable_and_unsafe_ones_are_not(tmp_path: Path) -> None:
    note = NOTE + "\n[bad](javascript:alert(1)) [local](Other%20Note.md)\n"
    _, reader, text = export(tmp_path, note)
    uris = link_uris(reader)
    assert "https://youtu.be/abc123XYZ_0?t=75" in uris
    assert "https://example.org/paper" in uris
    assert "https://www.youtube.com/watch?v=abc123XYZ_0" in uris
    assert not any(u.startswith("javascript") for u in uris)
    assert "bad" in text and "local" in text


def test_outline_has_title_and_headings_in_order(tmp_path: Path) -> None:
    _, reader, _ = export(tmp_path, NOTE)
    titles = outline_titles(reader)
    assert titles[0] == "Attention, Explained"
    assert titles[1:] == ["Overview Heading", "Steps Heading", "Deep Heading Four"]


def test_running_header_and_page_numbers(tmp_path: Path) -> None:
    body = "\n\n".join(f"Paragraph number {i} " + "filler words " * 40 for i in range(40))
    report, reader, _ = export(tmp_path, NOTE + body)
    assert report.pages >= 3
    for number, page in enumerate(reader.pages, start=1):
        lines = [line.strip() for line in (page.extract_text() or "").splitlines()]
        assert str(number) in lines, f"page {number} has no page number"
        if number > 1:
            assert any("Attention, Explained" in line for line in lines[:3])
            assert any("Deep Learning Channel" in line for line in lines[:3])


def test_flashcards_render_as_clean_q_and_a(tmp_path: Path) -> None:
    note = """---
type: assessment
---
## Flashcards

What is attention?::A weighted average of values
<!--SR:!2026-01-01,3,250-->

Reverse card:::Both directions <!--SR:!2026-02-01,4,270!2026-02-03,2,230-->

Why scale by sqrt(d)?
?
To keep softmax gradients useful.
<!--SR:!2026-01-03,1,230-->

Softmax turns scores into ==probabilities==.

Anki style {{c1::cloze text}} here.

```cpp
std::vector<int> v; // a::b stays code
```
"""
    _, _, text = export(tmp_path, note)
    assert "SR:" not in text and "<!--" not in text and "2026-01-01" not in text
    assert ":::" not in text and "{{" not in text and "?::" not in text
    for q, a in [("What is attention?", "A weighted average of values"),
                 ("Reverse card", "Both directions"),
                 ("Why scale by sqrt(d)?", "To keep softmax gradients useful.")]:
        assert re.search(rf"Q {re.escape(q)} A {re.escape(a)}", text), (q, text)
    assert "Softmax turns scores into […]" in text
    assert "Softmax turns scores into probabilities." in text
    assert "Anki style […] here." in text and "Anki style cloze text here." in text
    assert "std::vector<int> v; // a::b stays code" in text


def test_obsidian_comments_are_hidden_as_in_reading_view(tmp_path: Path) -> None:
    note = """# Gradients

Visible before %% an inline secret %% and after.

%%
A whole hidden
paragraph.
%%

## Related

%% vaultd:related %%
- [[Backpropagation]]
%% vaultd:related-end %%

```text
50%% stays in code %%
```
"""
    _, _, text = export(tmp_path, note)
    assert "Visible before and after." in text or "Visible before  and after." in text
    assert "secret" not in text and "hidden" not in text and "vaultd:related" not in text
    assert "Backpropagation" in text and "50%% stays in code %%" in text


def test_highlight_outside_flashcards_is_not_a_cloze(tmp_path: Path) -> None:
    _, _, text = export(tmp_path, "# Notes\n\nThis is ==important== stuff.\n")
    assert "This is important stuff." in text
    assert "[…]" not in text


@pytest.mark.parametrize(
    ("language", "sample"),
    [
        ("english", "The quick brown fox jumps over the lazy dog."),
        ("german", "Größenwahn über Straßen: Übung macht den Meister, äöü ÄÖÜ ß."),
        ("russian", "Съешь же ещё этих мягких французских булок, да выпей чаю."),
        ("greek", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Καλημέρα κόσμε."),
    ],
)
def test_languages_keep_their_characters(tmp_path: Path, language: str, sample: str) -> None:
    fonts = load_fonts()
    if not fonts.truetype:
        pytest.skip("no DejaVu/TrueType font on this machine; built-in fonts lack these")
    note = f"---\ntitle: {sample[:20]}\n---\n# {sample}\n\n{sample}\n\n- {sample}\n\n" \
           f"| {sample[:15]} |\n|---|\n| {sample[-15:]} |\n"
    report, _, text = export(tmp_path, note, name=language)
    assert sample in text
    assert not any("glyph" in w for w in report.warnings), report.warnings


def test_japanese_uses_a_cjk_font(tmp_path: Path) -> None:
    if load_fonts().cjk is None:
        pytest.skip("no TrueType CJK font installed (e.g. apt-get install "
                    "fonts-droid-fallback or fonts-wqy-microhei)")
    sample = "日本語のテキストです。東京は日本の首都です。"
    note = f"# 見出し\n\n{sample}\n\n- リスト項目\n\n| 列 |\n|---|\n| 値 |\n"
    report, _, text = export(tmp_path, note, name="japanese")
    compact = text.replace(" ", "")
    for needle in (sample, "見出し", "リスト項目", "列", "値"):
        assert needle in compact
    assert not any("glyph" in w for w in report.warnings), report.warnings


def test_missing_glyphs_are_reported_not_fatal(tmp_path: Path) -> None:
    # Tibetan is in neither DejaVu nor the usual CJK fallbacks
    report, _, text = export(tmp_path, "# Script\n\nLetter \u0f40 please.\n")
    assert "Letter" in text and "please." in text
    assert any("U+0F40" in w for w in report.warnings), report.warnings


def test_without_system_fonts_falls_back_to_builtins(tmp_path: Path) -> None:
    empty = tmp_path / "nofonts"
    empty.mkdir()
    report, _, text = export(tmp_path, NOTE + "\nСлово\n", font_dirs=[empty])
    assert "Overview Heading" in text and "Folded Callout Title" in text
    assert any("DejaVu fonts not found" in w for w in report.warnings)
    assert any("glyph" in w for w in report.warnings)


def test_embedded_vault_images(tmp_path: Path) -> None:
    from PIL import Image

    vault = tmp_path / "vault"
    (vault / "Study Notes").mkdir(parents=True)
    (vault / "attachments").mkdir()
    Image.new("RGB", (800, 400), (200, 30, 30)).save(vault / "attachments" / "diagram.png")
    Image.new("RGB", (40, 40), (30, 30, 200)).save(vault / "Study Notes" / "local.png")
    note = "# Pics\n\n![[diagram.png|300]]\n\n![local one](local.png)\n\n![[nowhere.png]]\n"
    report, reader, text = export(tmp_path, note, vault_root=vault,
                                  note_path=Path("Study Notes/pics.md"))
    images = [img for page in reader.pages for img in page.images]
    assert len(images) == 2
    assert any("nowhere.png" in w for w in report.warnings)
    assert "[image: nowhere.png]" in text


def test_print_theme_and_unknown_theme(tmp_path: Path) -> None:
    _, _, text = export(tmp_path, NOTE, theme="print")
    assert "Overview Heading" in text and "Folded Callout Title" in text
    with pytest.raises(ValueError, match="unknown PDF theme"):
        export_pdf(NOTE, tmp_path / "x.pdf", theme="neon")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    out = tmp_path / "PDF" / "sub" / "note.pdf"
    out.parent.mkdir(parents=True)
    out.write_bytes(b"old content")
    export_pdf(NOTE, out)
    assert out.read_bytes().startswith(b"%PDF-")
    assert [p.name for p in out.parent.iterdir()] == ["note.pdf"]


def test_content_hash() -> None:
    base = content_hash(NOTE, "default")
    assert base == content_hash(NOTE, "default")
    assert base != content_hash(NOTE, "print")
    assert base != content_hash(NOTE + " ", "default")
    assert re.fullmatch(r"[0-9a-f]{64}", base)
