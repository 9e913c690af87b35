"""PDF exporter: pages rasterise (pdftoppm) to real ink, not blank paper."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from vault_tools.pdf import export_pdf

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None,
                                reason="pdftoppm (poppler-utils) is not installed")

NOTE = """---
title: Raster Check
channel: Test Channel
duration: 90
---
## A heading

Some body text with **bold** and a [link](https://example.org).

> [!warning] Careful
> Callout body.

| a | b |
|---|---|
| 1 | 2 |
"""


def _ink(png: Path) -> float:
    """Share of pixels that are clearly not white."""
    with Image.open(png) as img:
        gray = img.convert("L")
        hist = gray.histogram()
        dark = sum(hist[:200])
        return dark / (gray.width * gray.height)


@pytest.mark.parametrize("theme", ["default", "print"])
def test_first_page_has_ink(tmp_path: Path, theme: str) -> None:
    pdf = tmp_path / "note.pdf"
    export_pdf(NOTE, pdf, theme=theme)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page")], check=True, capture_output=True, timeout=60)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == 1
    ink = _ink(pngs[0])
    assert 0.005 < ink < 0.5, ink
    with Image.open(pngs[0]) as img:
        assert ImageStat.Stat(img.convert("L")).stddev[0] > 10
