"""What the writer knows about the vault: the note index, the linker, related notes.

Lives on the writer thread. The :class:`~vault_tools.vault_index.VaultIndex` is built
once at start and kept current from watcher events, so linking a new note never rescans
the vault. The :class:`~vault_tools.links.Linker` is rebuilt lazily after the index
changed (titles come and go rarely; notes are written often). Graph facts of every note
that changes go to the :class:`~daemon.graphkeeper.GraphKeeper`.

Related notes for a new study note are chosen from what the writer can know in
microseconds: notes the text mentions (by title or alias, most mentioned first) and
study notes that share key concepts with it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path, PurePosixPath

from vault_tools.conflicts import is_conflict_copy
from vault_tools.graph import NoteFacts, note_from_markdown
from vault_tools.links import Linker
from vault_tools.pathgate import PathGate, PathRefused
from vault_tools.vault_index import VaultIndex, is_ignored_path

log = logging.getLogger("vaultd.knowledge")

RELATED_LIMIT = 8


class VaultKnowledge:
    def __init__(self, vault: Path, exclude: set[str], gate: PathGate | None = None) -> None:
        self.vault = vault
        self.gate = gate or PathGate(vault)  # every note read goes through it
        self.exclude = exclude  # vault-relative paths that are not knowledge (inbox, graph)
        started = time.monotonic()
        self.index = VaultIndex.build(vault)
        for path in exclude:
            self.index.remove(path)
        self._linker: Linker | None = None
        self._targets: dict[str, str] = {}  # note path -> link target given to the linker
        self._paths: dict[str, str] = {}  # and back: link target -> note path
        self._by_stem: dict[str, set[str]] = {}
        for entry in self.index.entries():
            self._by_stem.setdefault(entry.title.casefold(), set()).add(entry.path)
        self.concepts: dict[str, set[str]] = {}  # note path -> casefolded key concepts
        log.info("indexed %d notes in %.2f s", len(self.index), time.monotonic() - started)

    # -- keeping current -------------------------------------------------------------
    def note_changed(self, rel: str, text: str | None = None) -> NoteFacts | None:
        """A note was written or edited: refresh the index, return its graph facts."""
        if rel in self.exclude or is_ignored_path(rel) or not rel.endswith(".md"):
            return None
        if text is None:
            try:
                text = self.gate.read_text(rel)
            except (OSError, PathRefused):
                text = None
        if text is not None and is_conflict_copy(rel, text):
            self.note_removed(rel)  # a regeneration's conflict copy: not knowledge
            return None
        self.index.update_file(self.vault, rel, self.gate)
        self._relink(rel)
        if text is None:
            return None
        facts = note_from_markdown(rel, text)
        self.concepts[rel] = {c.casefold() for c in facts.concepts}
        return facts

    def note_removed(self, rel: str) -> None:
        self.index.remove(rel)
        self.concepts.pop(rel, None)
        self._relink(rel)

    def note_moved(self, old: str, new: str) -> None:
        self.index.move(old, new, self.vault)
        if old in self.concepts:
            self.concepts[new] = self.concepts.pop(old)
        self._relink(old)
        self._relink(new)

    def _relink(self, rel: str) -> None:
        """Update the linker for a changed note and for notes sharing its title (whose
        link target switches between ``Title`` and ``folder/Title``). Rebuilding the
        whole linker costs ~0.5 s at 10,000 notes; this costs microseconds."""
        stem = PurePosixPath(rel).stem.casefold()
        group = self._by_stem.setdefault(stem, set())
        group.add(rel)
        if self._linker is None:
            return  # built lazily from the index, which is current
        for path in sorted(group):
            entry = self.index.get(path)
            old = self._targets.pop(path, None)
            if old is not None:
                self._linker.remove(old)
                self._paths.pop(old, None)
            if entry is None:
                group.discard(path)
                continue
            target = self.index.link_target(path)
            self._linker.add(entry.title, entry.aliases, target)
            self._targets[path] = target
            self._paths[target] = path

    # -- queries -----------------------------------------------------------------------
    @property
    def linker(self) -> Linker:
        if self._linker is None:
            self._linker = Linker()
            for entry in self.index.entries():
                target = self.index.link_target(entry.path)
                self._linker.add(entry.title, entry.aliases, target)
                self._targets[entry.path] = target
                self._paths[target] = entry.path
        return self._linker

    def link(self, markdown: str, *, self_title: str) -> str:
        return self.linker.link(markdown, self_title=self_title)

    def related(self, text: str, concepts: list[str], *, self_path: str,
                limit: int = RELATED_LIMIT) -> list[tuple[str, str]]:
        """(note path, link target) of the notes most related to a new note, best first,
        never the note itself: notes the text mentions (by title or alias, most mentioned
        first) and notes sharing its key concepts."""
        self_title = PurePosixPath(self_path).stem
        scores: dict[str, float] = {}
        paths: dict[str, str] = {}
        for target, mentions in self.linker.candidates(text, limit * 2, self_title=self_title):
            scores[target] = scores.get(target, 0.0) + 2.0 + mentions
            path = self._paths.get(target)
            if path is not None:
                paths[target] = path
        mine = {c.casefold() for c in concepts}
        if mine:
            for path, theirs in self.concepts.items():
                shared = len(mine & theirs)
                if shared and path != self_path and path in self.index:
                    target = self.index.link_target(path)
                    scores[target] = scores.get(target, 0.0) + shared
                    paths[target] = path
        scores.pop(self_title, None)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0].casefold()))
        return [(paths.get(target, ""), target) for target, _ in ranked[:limit]
                if paths.get(target) != self_path]

    def link_target(self, path: str) -> str:
        """How other notes link ``path`` (``Title``, or ``folder/Title`` when ambiguous)."""
        return self.index.link_target(path)

    def find_by_video_id(self, video_id: str) -> str | None:
        return self.index.find_by_video_id(video_id)
