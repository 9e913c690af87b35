"""Media files as inbox sources: the link table, identity by content, the path gate, and
files still being copied in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from daemon.errors import PathRefusedError, SourceNotFoundError
from daemon.jobs.ledger import Ledger
from daemon.sources import media
from daemon.writer.inbox_sync import InboxSync
from vault_tools.inbox import Status
from vault_tools.pathgate import PathGate
from vault_tools.sources import find_sources


def aged(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Ledger, InboxSync]:
    vault = tmp_path / "vault"
    aged(vault / "Lectures" / "week3.m4a", b"\x00\x00\x00\x18ftypM4A lecture three")
    aged(vault / "Lectures" / "week4.m4a", b"\x00\x00\x00\x18ftypM4A lecture four!")
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    return vault, ledger, InboxSync(vault, vault / "inbox.md", ledger)


def test_every_link_form_and_extension_is_a_media_source() -> None:
    for ext in ("mp3", "m4a", "wav", "ogg", "opus", "flac", "mp4", "mkv", "webm", "mov"):
        for text in (f"![[Lectures/week3.{ext}]]", f"[[week3.{ext}|talk]]",
                     f"[talk](Lectures/week%203.{ext.upper()})", f"Lectures/week3.{ext}"):
            refs = find_sources(f"- {text} for Monday")
            assert [r.kind for r in refs] == ["media"], text
    assert find_sources("![[diagram.png]] and [[Lecture.md]]") == []
    assert [r.kind for r in find_sources("[[a.srt]] ![[a.mp3]]")] == ["file", "media"]


def test_a_renamed_recording_is_the_same_source(setup: tuple[Path, Ledger, InboxSync]
                                                ) -> None:
    vault, ledger, sync = setup
    sync.transform("- ![[Lectures/week3.m4a]]\n")
    (vault / "Lectures" / "week3.m4a").rename(vault / "Lectures" / "TCP congestion.m4a")
    sync.forget_file_names()
    out = sync.transform("- ![[Lectures/week3.m4a]]\n- [[TCP congestion.m4a]]\n"
                         "- ![[Lectures/week4.m4a]]\n")
    heard = [j for j in ledger.all_jobs() if j.state == "ready"]
    assert len(heard) == 2 and all(j.kind == "media" for j in heard)
    # One job for the recording, read from where it is now.
    assert {j.url for j in heard} == {"Lectures/TCP congestion.m4a", "Lectures/week4.m4a"}
    first, renamed, other = out.splitlines()
    assert "⏳ queued" in renamed and "⏳ queued" in other
    # The link to the old name now names no file.
    assert "❌ failed: media file not found in the vault: Lectures/week3.m4a" in first


def test_a_file_still_being_copied_is_not_identified_yet(
        setup: tuple[Path, Ledger, InboxSync]) -> None:
    vault, ledger, sync = setup
    growing = vault / "Lectures" / "copying.mp3"
    growing.write_bytes(b"ID3 first megabyte")
    assert sync.transform("- [[copying.mp3]]\n") == "- [[copying.mp3]]\n"
    assert ledger.all_jobs() == []
    aged(growing, b"ID3 first megabyte and the rest")  # the copy finished a minute ago
    sync.forget_file_names()
    assert "⏳ queued" in sync.transform("- [[copying.mp3]]\n")
    assert [j.url for j in ledger.all_jobs()] == ["Lectures/copying.mp3"]


def test_the_gate_refuses_symlinks_out_and_non_files(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    outside = aged(tmp_path / "private" / "diary.m4a", b"secret")
    (vault / "Lectures").mkdir(parents=True)
    (vault / "Lectures" / "link.m4a").symlink_to(outside)
    (vault / "Lectures" / "folder.m4a").mkdir()
    os.mkfifo(vault / "Lectures" / "pipe.m4a")
    aged(vault / "Lectures" / "ok.m4a", b"fine")
    gate = PathGate(vault)
    with media.open_media(gate, "Lectures/ok.m4a") as f:
        assert f.read() == b"fine"
    with pytest.raises(PathRefusedError, match="outside the vault"):
        media.open_media(gate, "Lectures/link.m4a")
    with pytest.raises(PathRefusedError, match="outside the vault"):
        media.open_media(gate, "../private/diary.m4a")
    with pytest.raises(PathRefusedError, match="not a file"):
        media.open_media(gate, "Lectures/pipe.m4a")  # never blocks on a FIFO
    with pytest.raises(PathRefusedError, match="is a folder, not a file"):
        media.open_media(gate, "Lectures/folder.m4a")
    with pytest.raises(SourceNotFoundError, match="not found"):
        media.open_media(gate, "Lectures/gone.m4a")
    # A vault that links folders in on purpose (vault.allow_symlinks_out) may.
    with media.open_media(PathGate(vault, allow_symlinks_out=True), "Lectures/link.m4a") as f:
        assert f.read() == b"secret"


def test_a_symlink_out_of_the_vault_is_not_a_source(setup: tuple[Path, Ledger, InboxSync],
                                                    tmp_path: Path) -> None:
    vault, ledger, sync = setup
    outside = aged(tmp_path / "private" / "diary.m4a", b"secret")
    (vault / "Lectures" / "diary.m4a").symlink_to(outside)
    out = sync.transform("- ![[Lectures/diary.m4a]]\n")
    assert "❌ failed: Lectures/diary.m4a is a symlink to " in out and "outside the vault" in out
    assert all(j.state == "failed" for j in ledger.all_jobs())


def test_fingerprint_is_content_not_name(tmp_path: Path) -> None:
    big = os.urandom(9 * 1024 * 1024)
    aged(tmp_path / "a.mp4", big)
    aged(tmp_path / "b.mp4", big)
    aged(tmp_path / "c.mp4", big[:-1] + bytes([big[-1] ^ 1]))  # last byte differs
    gate = PathGate(tmp_path)
    prints = []
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        with media.open_media(gate, name) as f:
            prints.append(media.fingerprint(f))
    assert prints[0] == prints[1] != prints[2]


def test_transcribing_line_reads_like_the_issue_says() -> None:
    assert Status("working", "transcribing 12:30 of 58:00").render() == \
        " — ⚙️ transcribing 12:30 of 58:00"
    assert Status("working", "1 of 3 done").render() == " — ⚙️ working: 1 of 3 done"


def test_an_inbox_pass_reads_a_recording_only_when_it_changed(tmp_path: Path) -> None:
    """The key is remembered by size, time and inode: content swapped behind an
    unchanged stamp is not read again; a real change (new time) is."""
    gate = PathGate(tmp_path)
    rec = aged(tmp_path / "talk.m4a", b"A" * 1000)
    prints = media.Fingerprints()
    first = prints.key_of(gate, "talk.m4a")
    stamp = rec.stat()
    rec.write_bytes(b"B" * 1000)
    os.utime(rec, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert prints.key_of(gate, "talk.m4a") == first  # not read again
    aged(rec, b"B" * 1000)  # modified (another time): read again
    second = prints.key_of(gate, "talk.m4a")
    assert second != first and second == media.Fingerprints().key_of(gate, "talk.m4a")
    rec.write_bytes(b"C" * 1000)  # being written right now
    assert prints.key_of(gate, "talk.m4a") is None
