"""Which note deletions are the user's: a settle for those seen live, a rescan for the rest.

Seen live: the watcher reports each note's deletion. ``rm -rf`` of the whole vault, a sync
client removing it or a drive going away report every note's deletion one by one too,
*before* the vault root itself is gone. So a deletion is only pending
(:class:`PendingDeletions`) until the vault has been quiet (no note deleted or arriving)
for ``DELETE_SETTLE`` seconds; then it counts only when the vault is still whole
(:func:`vault_whole`: the vault folder and its inbox are there) and still the same folder
(:func:`folder_identity`: not deleted and copied back meanwhile). Otherwise every pending
deletion is dropped: the vault vanished, nothing was the user's, and nothing is recorded
(ledger, index, graph, PDFs, inbox line). The vault, once back, is rescanned.

Not seen (a note deleted while the daemon was stopped, or while the vault was away and
came back without it): :func:`unseen_changes` compares what the ledger says is ours with
the vault, and the writer holds each missing note as pending, like a live deletion (a
vault being copied back is still filling up: notes arriving keep the others waiting),
then follows it the same way. A vault without its inbox (an empty mount point, a copy
half restored) is not looked at, nor one where every study note is missing
(:attr:`Unseen.all_gone`): nothing counts as deleted there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.jobs.ledger import NOTE_DELETED, Ledger
from vault_tools.pathgate import PathGate, PathRefused

DELETE_SETTLE = 2.0  # seconds of quiet after the last deletion before any counts
# Notes found missing at start or when the vault is back: a vault being copied back or
# synced may pause longer between files than a person deleting notes does.
UNSEEN_SETTLE = 10.0


def folder_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, None when it is not there: a vault deleted and
    copied back, re-synced or remounted is another folder under the same name."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class PendingDeletions:
    """Deletions seen live, held until the burst they came in is over. ``root``: the
    vault folder's identity when the first of them was seen (see :meth:`add`)."""

    def __init__(self, settle: float = DELETE_SETTLE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settle = settle
        self.clock = clock
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._last = 0.0
        self._burst_settle = settle
        self.root: tuple[int, int] | None = None

    def add(self, rel: str, root: tuple[int, int] | None = None,
            settle: float | None = None) -> None:
        """``root``: the vault folder's :func:`folder_identity` now; a burst whose vault
        folder is not the same one when it is due was the vault going away. ``settle``:
        a longer quiet for this burst (``UNSEEN_SETTLE``)."""
        if not self._pending:
            self.root = root
            self._burst_settle = self.settle
        if settle is not None:
            self._burst_settle = max(self._burst_settle, settle)
        self._pending[rel] = None
        self._last = self.clock()

    def discard(self, rel: str) -> None:
        """A note appeared or changed: it is no longer pending (re-created, moved back),
        and the others wait on while notes keep arriving (a restore or a sync under way
        brings them back one by one)."""
        self._pending.pop(rel, None)
        if self._pending:
            self._last = self.clock()

    def __len__(self) -> int:
        return len(self._pending)

    def wait(self) -> float | None:
        """Seconds until the pending deletions are due (0: now); None when there are none."""
        if not self._pending:
            return None
        return max(0.0, self._last + self._burst_settle - self.clock())

    def take(self) -> list[str]:
        """The pending deletions once due (and forget them); [] before."""
        if self.wait() != 0.0:
            return []
        rels, self._pending = list(self._pending), {}
        return rels


def vault_whole(gate: PathGate, inbox_rel: str) -> bool:
    """The vault folder is there and so is its inbox: deletions in it are the user's."""
    try:
        return gate.root.is_dir() and gate.is_file(inbox_rel)
    except (OSError, PathRefused):
        return False


@dataclass
class Unseen:
    """What changed in the vault while the daemon could not see it."""

    missing: list[str] = field(default_factory=list)  # notes of ours that are gone
    restored: list[str] = field(default_factory=list)  # study notes recorded deleted, back
    notes: int = 0  # study notes looked at (not recorded as deleted)
    notes_missing: int = 0  # of which gone

    @property
    def all_gone(self) -> bool:
        """Every one of several study notes is gone: a drive not mounted, a sync client
        still downloading, the wrong folder; not a person deleting their notes."""
        return self.notes >= 2 and self.notes_missing == self.notes


def unseen_changes(ledger: Ledger, gate: PathGate) -> Unseen:
    """Study notes of done jobs and notes with a PDF of ours that are no longer in the
    vault (and not yet recorded as deleted); study notes recorded as deleted that are
    back. (An assessment counts through its PDF: the ledger records only study notes.)"""
    found = Unseen()

    def present(rel: str) -> bool:
        try:
            return gate.is_file(rel)
        except (OSError, PathRefused):
            return True  # not ours to judge: never a deletion

    seen: set[str] = set()
    for job in ledger.in_state("done"):
        rel = job.note_path
        if not rel:
            continue
        seen.add(rel)
        if job.last_error == NOTE_DELETED:
            if present(rel):
                found.restored.append(rel)
            continue
        found.notes += 1
        if not present(rel):
            found.missing.append(rel)
            found.notes_missing += 1
    for rel, _digest in ledger.pdf_exports():
        if rel not in seen and not present(rel):
            seen.add(rel)
            found.missing.append(rel)
    return found
