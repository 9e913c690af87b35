"""Hostile image references in a note exported to PDF: an image outside the vault (by
``..``, an absolute path, a symlink, a URL-encoded path) is never embedded, and a FIFO or
a device named like an image never blocks or bloats the export. Each one is reported as
"not found" or "could not be read" and the PDF is still made.

The export runs in a subprocess with a deadline: before the path gate, a FIFO found by
its bare name (``![[pic.png]]``) was opened by ReportLab and the export hung forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reportlab.lib.utils import ImageReader

EXPORT = """
import json, sys
from pathlib import Path
from vault_tools.pdf import export_pdf
vault = Path(sys.argv[1])
note = (vault / "Notes" / "n.md").read_text()
report = export_pdf(note, vault / "out.pdf", vault_root=vault, note_path=Path("Notes/n.md"))
print(json.dumps(report.warnings))
"""


def png(path: Path, color: tuple[int, int, int]) -> None:
    from PIL import Image

    Image.new("RGB", (40, 30), color).save(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_hostile_image_references_are_refused_and_never_block(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    vault, outside = tmp_path / "vault", tmp_path / "outside"
    (vault / "Notes").mkdir(parents=True)
    (vault / "Pictures").mkdir()
    outside.mkdir()
    png(outside / "secret.png", (255, 0, 0))
    png(vault / "Pictures" / "ok.png", (0, 0, 255))
    os.symlink(outside / "secret.png", vault / "Pictures" / "linked.png")
    os.symlink(outside, vault / "Pictures" / "away")
    os.symlink("/dev/zero", vault / "Pictures" / "zero.png")
    os.mkfifo(vault / "Pictures" / "pipe.png")
    refs = ["![[../../outside/secret.png]]", f"![a]({outside / 'secret.png'})",
            "![b](%2E%2E/%2E%2E/outside/secret.png)", "![[linked.png]]",
            "![[Pictures/away/secret.png]]", "![[zero.png]]", "![[pipe.png]]",
            "![c](Pictures/pipe.png)", "![[ok.png]]"]
    (vault / "Notes" / "n.md").write_text("# Pictures\n\n" + "\n\n".join(refs) + "\n")
    proc = subprocess.run([sys.executable, "-c", EXPORT, str(vault)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)
    for ref in refs[:-1]:
        target = ref.split("(")[-1].rstrip(")") if "(" in ref else ref[3:-2]
        assert any(repr(target) in w for w in warnings), (ref, warnings)
    assert not any("ok.png" in w for w in warnings), warnings
    # Exactly one image (the vault's own blue one) is in the PDF.
    from pypdf import PdfReader

    images = [img for page in PdfReader(vault / "out.pdf").pages for img in page.images]
    assert len(images) == 1
    r, g, b = ImageReader(images[0].image).getRGBData()[:3]
    assert (r, g, b) == (0, 0, 255)
