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

from vault_tools.graph import NoteFacts, note_from_markdown
from vault_tools.links import Linker
from vault_tools.vault_index import VaultIndex, is_ignored_path

log = logging.getLogger("vaultd.knowledge")

RELATED_LIMIT = 8


class VaultKnowledge:
    def __init__(self, vault: Path, exclude: set[str]) -> None:
        self.vault = vault
        self.exclude = exclude  # vault-relative paths that are not knowledge (inbox, graph)
        started = time.monotonic()
        self.index = VaultIndex.build(vault)
        for path in exclude:
            self.index.remove(path)
        self._linker: Linker | None = None
        self.concepts: dict[str, set[str]] = {}  # note path -> casefolded key concepts
        log.info("indexed %d notes in %.2f s", len(self.index), time.monotonic() - started)

    # -- keeping current -------------------------------------------------------------
    def note_changed(self, rel: str, text: str | None = None) -> NoteFacts | None:
        """A note was written or edited: refresh the index, return its graph facts."""
        if rel in self.exclude or is_ignored_path(rel) or not rel.endswith(".md"):
            return None
        self.index.update_file(self.vault, rel)
        self._linker = None
        if text is None:
            try:
                text = (self.vault / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
        facts = note_from_markdown(rel, text)
        self.concepts[rel] = {c.casefold() for c in facts.concepts}
        return facts

    def note_removed(self, rel: str) -> None:
        self.index.remove(rel)
        self.concepts.pop(rel, None)
        self._linker = None

    def note_moved(self, old: str, new: str) -> None:
        self.index.move(old, new)
        if old in self.concepts:
            self.concepts[new] = self.concepts.pop(old)
        self._linker = None

    # -- queries -----------------------------------------------------------------------
    @property
    def linker(self) -> Linker:
        if self._linker is None:
            self._linker = Linker(self.index.titles_and_aliases())
        return self._linker

    def link(self, markdown: str, *, self_title: str) -> str:
        return self.linker.link(markdown, self_title=self_title)

    def related(self, text: str, concepts: list[str], *, self_path: str,
                limit: int = RELATED_LIMIT) -> list[str]:
        """Link targets of the notes most related to a new note (not itself)."""
        self_title = PurePosixPath(self_path).stem
        scores: dict[str, float] = {}
        for target, mentions in self.linker.candidates(text, limit * 2, self_title=self_title):
            scores[target] = scores.get(target, 0.0) + 2.0 + mentions
        mine = {c.casefold() for c in concepts}
        if mine:
            for path, theirs in self.concepts.items():
                shared = len(mine & theirs)
                if shared and path != self_path and path in self.index:
                    target = self.index.link_target(path)
                    scores[target] = scores.get(target, 0.0) + shared
        scores.pop(self_title, None)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0].casefold()))
        return [target for target, _ in ranked[:limit]]

    def find_by_video_id(self, video_id: str) -> str | None:
        return self.index.find_by_video_id(video_id)
