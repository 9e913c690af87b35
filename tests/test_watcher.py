"""The vault watcher with a real watchdog observer on a temp vault: what it tells the
writer about notes when a person (or an editor, a sync tool, Obsidian's trash) changes
them. Events are polled for with a deadline."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.service.vault_watcher import VaultWatcher
from tests.helpers import wait_for
from vault_tools.inbox import edit_inbox


class Events:
    def __init__(self, vault: Path) -> None:
        self.vault = os.path.abspath(vault)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str | None]] = []
        self.mode = "os-events"

    def __call__(self, kind: str, path: str, dest: str | None) -> None:
        rel = os.path.relpath(path, self.vault)
        with self.lock:
            self.seen.append((kind, rel, dest and os.path.relpath(dest, self.vault)))

    def about(self, rel: str) -> list[tuple[str, str, str | None]]:
        with self.lock:
            return [e for e in self.seen if rel in (e[1], e[2])]


@pytest.fixture(params=[False, True], ids=["os-events", "polling"])
def watched(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Events]]:
    vault = tmp_path / "vault"
    (vault / "Notes").mkdir(parents=True)
    (vault / ".trash").mkdir()
    (vault / ".obsidian").mkdir()
    (vault / "Notes" / "Cells.md").write_text("Cells.\n")
    (vault / "Notes" / "Old.md").write_text("Old.\n")
    events = Events(vault)
    events.mode = "polling" if request.param else "os-events"
    watcher = VaultWatcher(vault, vault / "inbox.md", lambda: None, debounce=0.05,
                           polling=request.param, on_note=events)
    watcher.start()
    yield vault, events
    watcher.stop()


def test_a_save_by_temp_file_and_rename_is_the_note_changing(
        watched: tuple[Path, Events]) -> None:
    vault, events = watched
    tmp = vault / "Notes" / ".Cells.md.tmp-1234"
    tmp.write_text("Cells, edited in an editor that saves by rename.\n")
    os.replace(tmp, vault / "Notes" / "Cells.md")
    found = wait_for(lambda: [e for e in events.about("Notes/Cells.md")
                              if e[0] in ("created", "modified")], what="the note changed")
    assert all(".tmp" not in (e[2] or "") for e in found)
    assert not events.about(tmp.name) and not events.about(f"Notes/{tmp.name}")


def test_a_note_moved_to_the_trash_is_deleted_and_a_rename_is_a_move(
        watched: tuple[Path, Events]) -> None:
    vault, events = watched
    os.rename(vault / "Notes" / "Old.md", vault / ".trash" / "Old.md")
    os.rename(vault / "Notes" / "Cells.md", vault / "Notes" / "Cell biology.md")
    wait_for(lambda: ("deleted", "Notes/Old.md", None) in events.about("Notes/Old.md") or
             # a polling observer sees a vanished file as a plain delete
             [e for e in events.about("Notes/Old.md") if e[0] == "deleted"],
             what="the trashed note reported deleted")
    wait_for(lambda: [e for e in events.about("Notes/Cell biology.md")
                      if e[0] in ("moved", "created")], what="the renamed note")
    assert not [e for e in events.seen if (e[2] or e[1]).startswith(".trash")]
    (vault / ".obsidian" / "workspace.md").write_text("settings")
    (vault / "Notes" / "Marker.md").write_text("marker\n")  # a later event, as a barrier
    wait_for(lambda: events.about("Notes/Marker.md"), what="the marker note")
    assert not [e for e in events.seen if e[1].startswith(".obsidian")]


def test_vaultds_own_compare_and_swap_edit_is_a_change_never_a_deletion(
        watched: tuple[Path, Events]) -> None:
    vault, events = watched
    note = vault / "Notes" / "Cells.md"
    assert edit_inbox(note, lambda text: text + "- [[Old]]\n")
    wait_for(lambda: [e for e in events.about("Notes/Cells.md")
                      if e[0] in ("created", "modified")], what="the edit reported")
    (vault / "Notes" / "Marker.md").write_text("marker\n")  # a later event, as a barrier
    wait_for(lambda: events.about("Notes/Marker.md"), what="the marker note")
    about = events.about("Notes/Cells.md")
    assert about[-1][0] != "deleted", about  # what the writer is left believing
    if events.mode == "os-events":  # a polling snapshot sees a new inode: delete + create
        assert not [e for e in about if e[0] == "deleted"], about
    assert note.read_text() == "Cells.\n- [[Old]]\n"
