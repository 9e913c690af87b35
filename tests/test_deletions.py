"""Pending deletions (daemon/writer/deletions.py): a burst is held until it is quiet, and
counts only in a whole vault. The end-to-end behaviour is in tests/test_e2e_vault_gone.py."""

from __future__ import annotations

from pathlib import Path

from daemon.writer.deletions import PendingDeletions, vault_whole
from tests.helpers import FakeClock
from vault_tools.pathgate import PathGate


def test_a_burst_is_due_only_after_it_has_been_quiet() -> None:
    clock = FakeClock()
    pending = PendingDeletions(settle=2.0, clock=clock)
    assert pending.wait() is None and pending.take() == []
    pending.add("A.md")
    clock.sleep(1.5)
    pending.add("B.md")  # the burst goes on: the settle starts again
    clock.sleep(1.5)
    assert pending.wait() == 0.5 and pending.take() == []
    pending.add("C.md")
    pending.discard("C.md")  # back before the settle ended (a sync client's re-create)
    clock.sleep(1.5)
    pending.discard("D.md")  # another note arrives (a restore under way): wait on
    clock.sleep(1.5)
    assert pending.take() == []
    clock.sleep(0.5)
    assert pending.take() == ["A.md", "B.md"]
    assert len(pending) == 0 and pending.wait() is None
    pending.add("E.md", settle=10.0)  # missing at start: a longer quiet for the burst
    pending.add("F.md")
    assert pending.wait() == 10.0
    clock.sleep(10.0)
    assert pending.take() == ["E.md", "F.md"]
    pending.add("G.md")  # a new burst: the short settle again
    assert pending.wait() == 2.0


def test_a_vault_is_whole_with_its_folder_and_inbox(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    gate = PathGate(vault)
    assert not vault_whole(gate, "inbox.md")  # an empty mount point
    (vault / "inbox.md").write_text("# Inbox\n")
    assert vault_whole(gate, "inbox.md")
    (vault / "inbox.md").unlink()
    vault.rmdir()
    assert not vault_whole(gate, "inbox.md")  # rm -rf
