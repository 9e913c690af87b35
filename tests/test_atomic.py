"""Atomic writes: the old file survives any failure; a crash leaves only a hidden temp
file, which the next start removes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault_tools.atomic import create_atomic, remove_stale_temps, temp_path_for, write_atomic


def test_create_never_replaces_and_write_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "n.md"
    create_atomic(target, "first")
    with pytest.raises(FileExistsError):
        create_atomic(target, "second")
    assert target.read_text() == "first"
    write_atomic(target, "third")
    assert target.read_text() == "third"
    assert [p.name for p in tmp_path.iterdir()] == ["n.md"]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "n.md"
    target.write_text("old")
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing-folder" / "x.md", "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["n.md"]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / "Notes").mkdir()
    stale = tmp_path / "Notes" / f".A.md.vaultd-tmp-{dead}-abcd1234"
    stale.write_text("half a note")
    mine = temp_path_for(tmp_path / "Notes" / "B.md")  # this (live) process's temp file
    mine.write_text("being written")
    user = tmp_path / "Notes" / "A.md"
    user.write_text("keep")
    assert remove_stale_temps(tmp_path) == [stale]
    assert mine.exists() and user.read_text() == "keep"
    assert str(os.getpid()) in mine.name
