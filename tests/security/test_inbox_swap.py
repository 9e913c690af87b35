"""The inbox editor under a folder swap (TOCTOU): the inbox's folder is replaced by a
symlink to a folder outside the vault while the daemon is in the middle of an edit.

The editor used to take the real path the gate resolved before the edit and then read,
write its temp file and rename by that path: the swap sent the rename out of the vault,
onto a file vaultd did not create. Now every round of the edit opens the folder through
the gate and works relative to that open folder (``openat`` / ``renameat2``), so the
write lands in the folder the gate checked and nothing outside changes.

The swap is made at a deterministic moment through the real code: the writer's own
``refresh_inbox`` runs, and the transform it applies (the daemon's, unchanged) is
wrapped so that, once it has read the inbox, the folder is swapped before the write.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.jobs.ledger import Ledger
from daemon.paths import VaultPaths
from daemon.writer.vault_writer import VaultWriter
from vault_tools.inbox import edit_inbox

TEXT = "# Inbox\n\n- https://youtu.be/dQw4w9WgXcQ\n"


def swap_folder_then(folder: Path, outside: Path, transform: Callable[[str], str]
                     ) -> Callable[[str], str]:
    """``transform``, but the first call first moves ``folder`` aside and puts a symlink
    to ``outside`` in its place (what an attacker or a sync tool racing us would do)."""
    def swapped(text: str) -> str:
        if not folder.is_symlink():
            folder.rename(folder.with_name(folder.name + ".moved"))
            os.symlink(outside, folder)
        return transform(text)
    return swapped


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    (v / ".vaultd").mkdir(parents=True)
    (v / ".vaultd" / "config.toml").write_text(
        '[vault]\ninbox = "Inbox/inbox.md"\n[pdf]\nenabled = false\n')
    (v / "Inbox").mkdir()
    (v / "Inbox" / "inbox.md").write_text(TEXT)
    return v


def test_the_daemons_inbox_edit_stays_in_the_folder_the_gate_opened(
        vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "inbox.md").write_text(TEXT)  # same bytes: the editor's re-check passes
    before = os.stat(outside / "inbox.md")
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    config = load_config(vault)
    paths = VaultPaths.from_config(vault, config)
    paths.state.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(paths.ledger)
    try:
        writer = VaultWriter(paths, ledger, config)  # not started: this thread writes
        writer.sync.transform = swap_folder_then(  # type: ignore[method-assign]
            vault / "Inbox", outside, writer.sync.transform)
        writer.refresh_inbox()
    finally:
        ledger.close()

    assert (vault / "Inbox").is_symlink()  # the swap did happen mid-edit
    after = os.stat(outside / "inbox.md")
    assert (outside / "inbox.md").read_text() == TEXT  # the file outside is untouched
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in outside.iterdir()) == ["inbox.md"]  # no temp left there
    # The edit landed in the folder the gate had opened (moved aside, still in the vault).
    edited = (vault / "Inbox.moved" / "inbox.md").read_text()
    assert edited.startswith(TEXT.rstrip("\n")) and "⏳ queued" in edited
    assert sorted(p.name for p in (vault / "Inbox.moved").iterdir()) == ["inbox.md"]


def test_a_swap_before_the_next_round_is_refused(tmp_path: Path) -> None:
    """After the swap the next edit finds the symlink out and refuses it: the gate
    checks at every round, not once."""
    from vault_tools.pathgate import PathGate, PathRefused

    vault = tmp_path / "vault"
    (vault / "Inbox").mkdir(parents=True)
    (vault / "Inbox" / "inbox.md").write_text(TEXT)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "inbox.md").write_text(TEXT)
    gate = PathGate(vault)
    assert edit_inbox("Inbox/inbox.md", lambda t: t + "- one\n", gate=gate)
    (vault / "Inbox").rename(vault / "Inbox.moved")
    os.symlink(outside, vault / "Inbox")
    with pytest.raises(PathRefused, match="outside the vault"):
        edit_inbox("Inbox/inbox.md", lambda t: t + "- two\n", gate=gate)
    assert (outside / "inbox.md").read_text() == TEXT
    assert (vault / "Inbox.moved" / "inbox.md").read_text() == TEXT + "- one\n"
