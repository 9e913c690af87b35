"""Hostile titles become names that are safe on Windows, macOS, Linux and in Obsidian."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault_tools.filenames import numbered, safe_filename

FORBIDDEN = set('\\/:*?"<>|#^[]') | {chr(c) for c in range(32)}


def assert_safe(name: str) -> None:
    assert name and name == name.strip() and not name.endswith(".")
    assert not name.startswith(".")
    assert not FORBIDDEN & set(name)
    assert ".." not in Path(name).parts and "/" not in name
    assert len(name.encode("utf-8")) <= 150
    assert not any(c in name for c in "\u202e\u202d\u2066\u2067\u2068\u2069\u200f\u200e")
    assert name.split(".")[0].strip().upper() not in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT1"}


@pytest.mark.parametrize("title,expected", [
    ("Photosynthesis 101", "Photosynthesis 101"),
    ("../../etc/passwd", "etc passwd"),
    ("Why 1/2 + 1/3 ≠ 2/5: fractions | explained", "Why 1 2 + 1 3 ≠ 2 5 fractions explained"),
    ("CON", "CON_"),
    ("nul.txt", "nul_.txt"),
    ("   ...   ", "Untitled"),
    ("", "Untitled"),
    ("Title.", "Title"),
    ("[[Wiki]] #tag ^block", "Wiki tag block"),
    ("שלום \u202eevil\u202c עולם", "שלום evil עולם"),
    ("Emoji 🎉 talk 👩‍🔬", "Emoji 🎉 talk 👩‍🔬"),
])
def test_known_titles(title: str, expected: str) -> None:
    assert safe_filename(title) == expected
    assert_safe(safe_filename(title))


def test_300_character_titles_are_cut_on_a_character_boundary() -> None:
    for ch in ("a", "é", "中", "🎉", "é"):
        name = safe_filename(ch * 300)
        assert_safe(name)
        name.encode("utf-8")  # valid UTF-8, no half characters


def test_numbered_names() -> None:
    assert numbered("Talk", 1) == "Talk"
    assert numbered("Talk", 3) == "Talk (3)"


@given(st.text(max_size=400))
def test_any_title_gives_a_safe_name(title: str) -> None:
    assert_safe(safe_filename(title))


@given(st.text(min_size=1, max_size=60))
def test_names_can_be_created_on_disk(tmp_path_factory: pytest.TempPathFactory,
                                      title: str) -> None:
    folder = tmp_path_factory.mktemp("names")
    path = folder / f"{safe_filename(title)} (Assessment).md"
    path.write_text("x")
    assert path.parent == folder and path.exists()

