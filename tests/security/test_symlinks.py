"""Symlinks at every level of the vault: the inbox, source files, the notes and PDF
folders, the ``.vaultd`` folder. A symlink that leads out of the vault is refused with a
plain reason (config error naming the setting at start; failed line and ``status`` while
running) unless ``vault.allow_symlinks_out = true``; nothing is read or written outside.
Issue 11, item 2: a ``Study Notes`` symlink used to get notes written outside the vault
and then killed the writer thread (``relative_to``), so later lines were never annotated.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.helpers import start_daemon, status_json, wait_for
from tests.security.test_paths_inbox import (
    SECRET,
    annotations,
    files_containing,
    make_vault,
    run_once,
    write_inbox,
)


def outside_listing(outside: Path) -> list[str]:
    return sorted(str(p.relative_to(outside)) for p in outside.rglob("*"))


@pytest.mark.parametrize("setting,link", [
    ("vault.notes_folder", "Study Notes"),
    ("vault.pdf_folder", "PDF"),
], ids=["notes-folder", "pdf-folder"])
def test_output_folder_linked_out_is_a_config_error_at_start(
        tmp_path: Path, setting: str, link: str) -> None:
    vault, outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"], pdf=True)
    (outside / "linked").mkdir()
    os.symlink(outside / "linked", vault / link)
    proc = run_once(vault, env, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert setting in proc.stderr and "outside the vault" in proc.stderr
    assert "allow_symlinks_out" in proc.stderr  # the way out is named
    assert list((outside / "linked").iterdir()) == []


def test_inbox_linked_out_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    vault, outside, env = make_vault(tmp_path, [])
    target = outside / "someone-elses.md"
    target.write_text("- [[gravity.srt]]\n", encoding="utf-8")
    (vault / "inbox.md").unlink()
    os.symlink(target, vault / "inbox.md")
    proc = run_once(vault, env, timeout=120)
    assert proc.returncode == 2 and "vault.inbox" in proc.stderr, proc.stderr
    assert target.read_text(encoding="utf-8") == "- [[gravity.srt]]\n"
    assert not (vault / "Study Notes").exists()


def test_vaultd_folder_linked_out_is_refused(tmp_path: Path) -> None:
    vault, outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"])
    shutil.move(vault / ".vaultd", outside / "dot-vaultd")
    os.symlink(outside / "dot-vaultd", vault / ".vaultd")
    proc = run_once(vault, env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert ".vaultd" in proc.stderr and "outside the vault" in proc.stderr


def test_allow_symlinks_out_lets_a_linked_notes_folder_be_used(tmp_path: Path) -> None:
    """The documented opt-in: a user who linked a folder in on purpose."""
    vault, outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"],
                                     extra_config="[vault]\nallow_symlinks_out = true\n")
    (outside / "linked").mkdir()
    os.symlink(outside / "linked", vault / "Study Notes")
    proc = run_once(vault, env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [(_, status)] = annotations(vault)
    assert "✅" in status and "[[Study Notes/Gravity]]" in status, status
    assert (outside / "linked" / "Gravity.md").is_file()


def test_source_files_linked_out_are_refused_inside_links_work(tmp_path: Path) -> None:
    vault, outside, env = make_vault(tmp_path, [])
    os.symlink(outside / "secret.srt", vault / "Lectures" / "leak.srt")
    os.symlink(outside, vault / "Lectures" / "elsewhere")
    os.symlink("gravity.srt", vault / "Lectures" / "alias.srt")  # inside: fine
    lines = ["- [[leak.srt]]", "- [[Lectures/leak.srt]]", "- [x](Lectures/leak.srt)",
             "- [[Lectures/elsewhere/secret.srt]]", "- [[alias.srt]]"]
    write_inbox(vault, lines)
    proc = run_once(vault, env)
    assert proc.returncode == 0, proc.stderr
    seen = dict(annotations(vault))
    for line in lines[:4]:
        assert "❌ failed" in seen[line] and "symlink" in seen[line], (line, seen[line])
        assert "outside the vault" in seen[line]
    assert "✅" in seen["- [[alias.srt]]"], seen
    assert files_containing(vault, SECRET) == []


def test_notes_folder_swapped_for_a_symlink_while_running(tmp_path: Path) -> None:
    """Issue 11, item 2 on a running daemon: the write is refused with a reason on the
    line and in ``status``; the daemon keeps running and annotates later lines."""
    vault, outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"])
    daemon = start_daemon(vault, env, log=tmp_path / "daemon.log")
    try:
        wait_for(lambda: "✅" in annotations(vault)[0][1], timeout=90, what="first note")
        notes = vault / "Study Notes"
        shutil.move(notes, tmp_path / "kept-notes")
        (outside / "linked").mkdir()
        os.symlink(outside / "linked", notes)
        write_inbox(vault, ["- [[gravity.srt]]", "- [[memory.srt]]"])
        status = wait_for(lambda: "❌" in annotations(vault)[1][1] and annotations(vault)[1][1],
                          timeout=90, what="the refused line")
        assert "Study Notes is a symlink" in status and "outside the vault" in status
        assert outside_listing(outside / "linked") == []
        failures = status_json(vault, env)["failures"]
        assert any("outside the vault" in (f["reason"] or "") for f in failures), failures
        assert daemon.poll() is None
        # The folder comes back: the daemon is alive and handles the next line.
        notes.unlink()
        shutil.move(tmp_path / "kept-notes", notes)
        (vault / "Lectures" / "enzymes.srt").write_text(
            (vault / "Lectures" / "memory.srt").read_text().replace("memory", "enzymes"))
        write_inbox(vault, ["- [[gravity.srt]]", "- [[memory.srt]]", "- [[enzymes.srt]]"])
        wait_for(lambda: "✅" in annotations(vault)[2][1], timeout=90, what="a later line")
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=90)
    assert outside_listing(outside / "linked") == []


def test_doctor_reports_symlinks_that_leave_the_vault(tmp_path: Path) -> None:
    import json

    from tests.helpers import vaultd

    vault, outside, env = make_vault(tmp_path, [])
    os.symlink(outside / "secret.srt", vault / "Lectures" / "leak.srt")
    os.symlink("gravity.srt", vault / "Lectures" / "alias.srt")  # inside: not reported
    os.mkfifo(vault / "inbox-pipe.md")
    proc = vaultd("doctor", "--vault", str(vault), "--no-network", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    link = checks["symlinks"]
    assert link["verdict"] == "warn", link
    assert "Lectures/leak.srt" in link["detail"] and "alias.srt" not in link["detail"]
    assert "allow_symlinks_out" in link["fix"]
    # A configured folder that leads out fails the check, naming the setting.
    os.symlink(outside, vault / "Study Notes")
    proc = vaultd("doctor", "--vault", str(vault), "--no-network", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert checks["symlinks"]["verdict"] == "fail"
    assert "vault.notes_folder" in checks["symlinks"]["detail"]
    # The inbox replaced by a FIFO: doctor says so instead of hanging on it.
    (vault / "inbox.md").unlink()
    os.rename(vault / "inbox-pipe.md", vault / "inbox.md")
    proc = vaultd("doctor", "--vault", str(vault), "--no-network", "--json", env=env,
                  timeout=60)
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert checks["inbox"]["verdict"] == "fail"


def test_pdf_folder_swapped_for_a_symlink_while_running(tmp_path: Path) -> None:
    """PDFs used to land outside the vault through a ``PDF`` symlink. Now the PDF is not
    written, ``status`` says why, and the daemon goes on."""
    vault, outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"], pdf=True)
    daemon = start_daemon(vault, env, log=tmp_path / "daemon.log")
    try:
        first = vault / "PDF" / "Study Notes" / "Gravity.pdf"
        wait_for(first.is_file, timeout=120, what="the first PDF")
        shutil.move(vault / "PDF", tmp_path / "kept-pdf")
        (outside / "pdfs").mkdir()
        os.symlink(outside / "pdfs", vault / "PDF")
        write_inbox(vault, ["- [[gravity.srt]]", "- [[memory.srt]]"])
        wait_for(lambda: "✅" in annotations(vault)[1][1], timeout=120, what="second note")
        notices = wait_for(lambda: [n for n in status_json(vault, env)["notices"]
                                    if "Memory" in n], timeout=60, what="a notice")
        assert "PDF is a symlink" in notices[0] and "outside the vault" in notices[0]
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=90)
    assert outside_listing(outside / "pdfs") == []


def test_sighup_refuses_a_config_whose_folder_leads_out(tmp_path: Path) -> None:
    """Config paths are checked on SIGHUP too: the bad file is named, the running config
    stays, and the daemon keeps working."""
    vault, outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"])
    log = tmp_path / "daemon.log"
    daemon = start_daemon(vault, env, log=log)
    try:
        wait_for(lambda: "✅" in annotations(vault)[0][1], timeout=90, what="first note")
        os.symlink(outside, vault / "Elsewhere")
        config = vault / ".vaultd" / "config.toml"
        config.write_text(config.read_text() + '[vault]\nnotes_folder = "Elsewhere"\n')
        daemon.send_signal(signal.SIGHUP)
        text = wait_for(lambda: "config not reloaded" in log.read_text() and log.read_text(),
                        timeout=30, what="the reload refused")
        assert "vault.notes_folder" in text and "outside the vault" in text
        write_inbox(vault, ["- [[gravity.srt]]", "- [[memory.srt]]"])
        wait_for(lambda: "✅" in annotations(vault)[1][1], timeout=90, what="a later line")
        assert (vault / "Study Notes" / "Memory.md").is_file()
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=90)
    assert outside_listing(outside) == ["secret.srt"]
