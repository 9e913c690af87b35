"""The path gate itself (vault_tools/pathgate.py): whatever path goes in, either a file
inside the vault's real root is read or written, or ``PathRefused`` comes out with a
reason. Property tests draw hostile paths; the race test swaps a folder for a symlink
out while writes run, and checks that nothing ever lands outside."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault_tools.pathgate import PathGate, PathRefused, clean_typed


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp_path = tmp_path_factory.mktemp("gate")
    vault, outside = tmp_path / "vault", tmp_path / "outside"
    (vault / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.srt").write_text("secret")
    (vault / "a" / "ok.srt").write_text("ok")
    os.symlink(outside, vault / "a" / "out")
    os.symlink(outside / "secret.srt", vault / "a" / "leak.srt")
    os.symlink("../a", vault / "a" / "b" / "up")  # inside: allowed
    os.symlink("/dev/zero", vault / "zero.srt")
    os.mkfifo(vault / "pipe.srt")
    os.symlink("loop2", vault / "loop1")
    os.symlink("loop1", vault / "loop2")
    return vault, outside


SEGMENTS = ["a", "b", "..", ".", "out", "leak.srt", "ok.srt", "up", "zero.srt", "pipe.srt",
            "loop1", "~", "C:", "%2e%2e", "..\\..", "", "x\x00y", "secret.srt"]


@given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=6),
       absolute=st.booleans())
def test_any_path_reads_inside_the_vault_or_is_refused(
        world: tuple[Path, Path], parts: list[str], absolute: bool) -> None:
    vault, _outside = world
    gate = PathGate(vault)
    typed = "/".join(parts)
    if absolute:
        typed = str(vault / typed)
    try:
        rel = clean_typed(typed)
        data = gate.read_bytes(rel, 1000)
        real = gate.resolve(rel)
    except PathRefused as exc:
        assert exc.reason
        return
    except OSError:
        return  # missing, a folder, a loop: nothing read
    assert data == b"ok"  # the only regular file reachable inside the vault
    assert Path(os.path.realpath(real)).is_relative_to(os.path.realpath(vault))


@given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5))
def test_any_write_lands_inside_the_vault_or_is_refused(
        world: tuple[Path, Path], parts: list[str]) -> None:
    vault, outside = world
    gate = PathGate(vault)
    try:
        real = gate.write(clean_typed("/".join(parts) + ".md"), "x", create_only=True)
    except PathRefused:
        return
    except OSError:
        return
    assert Path(os.path.realpath(real)).is_relative_to(os.path.realpath(vault))
    assert sorted(p.name for p in outside.iterdir()) == ["secret.srt"]
    os.unlink(real)


def test_special_files_and_size_limit(world: tuple[Path, Path]) -> None:
    vault, _ = world
    gate = PathGate(vault)
    with pytest.raises(PathRefused, match="outside the vault"):
        gate.read_bytes("zero.srt", 100)
    with pytest.raises(PathRefused, match="FIFO"):
        gate.read_bytes("pipe.srt", 100)  # returns at once: the open does not block
    with pytest.raises(PathRefused, match="folder"):
        gate.read_bytes("a", 100)
    with pytest.raises(PathRefused, match="larger than 1 bytes"):
        gate.read_bytes("a/ok.srt", 1)
    allowed = PathGate(vault, allow_symlinks_out=True)
    with pytest.raises(PathRefused, match="device"):
        allowed.read_bytes("zero.srt", 100)  # followed, but a device is never a file
    assert allowed.read_bytes("a/leak.srt", 100) == b"secret"  # the opt-in


def test_typed_paths(world: tuple[Path, Path]) -> None:
    for typed in ["../x.srt", "%2E%2E/x.srt", "..\\x.srt", "a/../../x.srt", "~/x.srt",
                  "~root/x.srt", "C:\\x.srt", "c:/x.srt", "\\\\server\\share\\x.srt",
                  "x%00.srt", "x\x00.srt"]:
        with pytest.raises(PathRefused):
            clean_typed(typed)
    assert clean_typed("a/./b/../ok.srt") == "a/ok.srt"
    assert clean_typed("a%20b.srt") == "a b.srt"
    assert clean_typed("a\\b.srt") == "a/b.srt"
    vault, _ = world
    gate = PathGate(vault)
    with pytest.raises(PathRefused):
        gate.relative("/etc/passwd")
    assert gate.relative(vault / "a" / "ok.srt") == "a/ok.srt"


def test_create_only_never_replaces_anything(world: tuple[Path, Path]) -> None:
    vault, outside = world
    gate = PathGate(vault)
    for name in ("a/ok.srt", "a/leak.srt", "pipe.srt", "zero.srt"):
        with pytest.raises(FileExistsError):
            gate.write(name, "new", create_only=True)
    assert (vault / "a" / "ok.srt").read_text() == "ok"
    assert (outside / "secret.srt").read_text() == "secret"
    with pytest.raises(PathRefused):
        gate.write("a/leak.srt", "new")  # replace through a symlink out: refused
    assert (outside / "secret.srt").read_text() == "secret"


def test_a_folder_swapped_for_a_symlink_mid_write_never_escapes(tmp_path: Path) -> None:
    """Time of check vs time of use: a thread keeps swapping ``Notes`` between a real
    folder and a symlink out of the vault while writes run. Each write lands inside the
    vault or is refused; nothing ever appears outside."""
    vault, outside = tmp_path / "vault", tmp_path / "outside"
    (vault / "Notes").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, vault / "link")
    gate = PathGate(vault)
    stop = threading.Event()

    def swapper() -> None:
        real, parked = vault / "Notes", vault / "parked"
        while not stop.is_set():
            os.rename(real, parked)
            os.symlink(outside, real)
            os.unlink(real)
            os.rename(parked, real)
            time.sleep(0.0002)  # the real folder stays a moment: some writes get through

    thread = threading.Thread(target=swapper)
    thread.start()
    outcomes = {"written": 0, "refused": 0}
    try:
        for i in range(400):
            try:
                gate.write(f"Notes/n{i}.md", "x", create_only=i % 2 == 0,
                           make_parents=False)
                outcomes["written"] += 1
            except (PathRefused, OSError):  # refused, or the folder absent that instant
                outcomes["refused"] += 1
    finally:
        stop.set()
        thread.join()
    assert list(outside.iterdir()) == []
    assert outcomes["refused"] > 0  # the race really happened
    assert gate.write("Notes/after.md", "x").parent == vault.resolve() / "Notes"
