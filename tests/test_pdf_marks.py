"""✅ / ❌ in a note's PDF (issue 17, item 7): shown by a face that has them (Symbola,
Noto Sans Symbols 2, … when installed), else as a plain look-alike (DejaVu's ✔ ✘), else
as ASCII with ReportLab's built-in fonts, never as an empty box. Checked by the PDF's
text and by rasterising the page with pdftoppm."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from vault_tools.pdf import export_pdf
from vault_tools.pdf.fonts import default_font_dirs, load_fonts

NOTE = ("---\ntitle: Quiz results\n---\n## Results ✅ and ❌\n\n- ✅ light makes sugar\n"
        "- ❌ plants eat soil\n\n| claim | verdict |\n|---|---|\n| light | ✅️ |\n"
        "| soil | ❌ |\n")


def _export(tmp_path: Path, name: str, font_dirs: list[Path] | None) -> tuple[list[str], str]:
    out = tmp_path / f"{name}.pdf"
    report = export_pdf(NOTE, out, font_dirs=font_dirs)
    text = "\n".join(p.extract_text() or "" for p in PdfReader(str(out)).pages)
    return list(report.warnings), text


def _dejavu_dir() -> Path | None:
    fonts = load_fonts()
    if not fonts.truetype:
        return None
    for d in default_font_dirs():
        found = sorted(d.rglob("DejaVuSans.ttf")) if d.is_dir() else []
        if found:
            return found[0].parent
    return None


def test_marks_use_a_face_that_has_them_or_a_look_alike(tmp_path: Path) -> None:
    warnings, text = _export(tmp_path, "system", None)
    assert not [w for w in warnings if "glyph" in w], warnings
    assert "\x00" not in text  # what an empty box (.notdef) extracts as
    symbols = load_fonts().symbols
    yes, no = ("✅", "❌") if symbols else ("✔", "✘")
    assert f"Results {yes} and {no}" in text, text
    assert "\ufe0f" not in text


def test_only_dejavu_gives_heavy_check_and_ballot_x(tmp_path: Path) -> None:
    dejavu = _dejavu_dir()
    if dejavu is None:
        pytest.skip("DejaVu is not installed (.ci/run installs fonts-dejavu-core)")
    warnings, text = _export(tmp_path, "dejavu", [dejavu])
    assert not [w for w in warnings if "glyph" in w], warnings
    assert "Results ✔ and ✘" in text and "✅" not in text and "\x00" not in text


def test_builtin_fonts_give_ascii_marks(tmp_path: Path) -> None:
    empty = tmp_path / "nofonts"
    empty.mkdir()
    warnings, text = _export(tmp_path, "builtin", [empty])
    assert not [w for w in warnings if "U+2705" in w or "U+274C" in w], warnings
    assert "Results [x] and [ ]" in text, text


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm is not installed")
def test_the_mark_is_drawn_like_the_look_alike(tmp_path: Path) -> None:
    """Rasterised, a ✅ line looks exactly like the same line written with the face's
    own mark (no box, no gap): the fallback really drew a glyph."""
    dejavu = _dejavu_dir()
    if dejavu is None:
        pytest.skip("DejaVu is not installed")
    pngs = []
    for name, mark in (("emoji", "✅"), ("plain", "✔")):
        (tmp_path / name).mkdir()
        pdf = tmp_path / name / "note.pdf"  # same name: the title comes from it
        export_pdf(f"Result {mark} done\n", pdf, font_dirs=[dejavu])
        subprocess.run(["pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "1", str(pdf),
                        str(tmp_path / name / "page")], check=True, capture_output=True,
                       timeout=60)
        pngs.append(sorted((tmp_path / name).glob("page*.png"))[0])
    with Image.open(pngs[0]) as a, Image.open(pngs[1]) as b:
        assert a.convert("L").tobytes() == b.convert("L").tobytes()
