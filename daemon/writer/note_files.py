"""Study-note and assessment files: naming, composing, creating and regenerating them.

Called only from the vault writer thread. Identity, not paths: a note belongs to a job by
its ``source_key`` (or ``video_id``) frontmatter. Creating never replaces a file: a name
taken by someone else's file gets a number (``Title (2).md``); resuming after a crash
finds our own note and keeps it. Regenerating merges the new text into the user's
edited file (see :mod:`vault_tools.regenerate`) and, when the two collide, leaves the
note alone and writes the new version beside it as a conflict copy.

Every text written is returned, so the ledger can keep it as the base of the next merge.

Every read and write goes through the path gate (``paths.gate``) at the moment of use: a
notes folder that has become a symlink out of the vault makes the job fail with the gate's
reason (:class:`~daemon.errors.PathRefusedError`), nothing is written outside. Conflict
copies are created only under a free name (never over any file).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daemon.errors import PathRefusedError, VaultWriteError
from daemon.paths import VaultPaths
from daemon.secrets import region_tag
from daemon.writer.vault_knowledge import VaultKnowledge
from vault_tools import conflicts as conflict_copies
from vault_tools import frontmatter, notes
from vault_tools import related as related_region
from vault_tools.filenames import numbered, safe_filename
from vault_tools.inbox import InboxBusy, edit_inbox
from vault_tools.merge import Collision
from vault_tools.models import VideoContent
from vault_tools.pathgate import PathRefused
from vault_tools.regenerate import regenerate
from vault_tools.sanitize import sanitize_markdown
from vault_tools.sr_settings import SrSettings

log = logging.getLogger("vaultd.writer")


@dataclass(frozen=True)
class WriteResult:
    note: str  # vault-relative path
    assessment: str
    created: bool  # False when an existing note was kept or merged into
    note_text: str | None = None  # what we generated (base of the next regeneration)
    assessment_text: str | None = None
    conflicts: tuple[str, ...] = ()  # conflict copies written instead of merging
    related: tuple[str, ...] = ()  # vault paths of the notes listed under Related


@dataclass(frozen=True)
class Composed:
    note: str
    assessment: str
    related: tuple[str, ...]  # vault paths of the notes listed under Related


class Notices:
    """What vaultd did differently because of a file in the vault (a user's file kept at
    an output path and ours written beside it, a path refused): each said once in the
    log, the latest listed in ``vaultd status``. Writer thread only."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._items: dict[str, float] = {}

    def say(self, text: str) -> None:
        if text in self._items:
            return
        log.warning("%s", text)
        self._items[text] = time.time()
        while len(self._items) > self.limit:
            del self._items[next(iter(self._items))]

    def recent(self) -> list[str]:
        return list(self._items)

    def forget(self, text: str) -> None:
        """The condition is over: the same text is said again if it comes back."""
        self._items.pop(text, None)


def now_iso() -> str:
    return datetime.now().astimezone().replace(microsecond=0).isoformat()


class NoteFiles:
    def __init__(self, paths: VaultPaths,
                 knowledge: Callable[[], VaultKnowledge | None],
                 notices: Notices | None = None) -> None:
        self.paths = paths
        self.knowledge = knowledge
        self.notices = notices or Notices()

    # -- identity ----------------------------------------------------------------------
    def owned(self, path: Path, key: str) -> bool | None:
        """True: our note for ``key``; False: someone else's file; None: no file."""
        if not self.paths.gate.exists(path):  # (a folder that leads out: refused later)
            return None
        try:
            text = self.paths.gate.read_text(path)
        except (OSError, PathRefused):
            return False  # unreadable, a symlink out, a FIFO...: never ours, never replaced
        return notes.owner_key(text) == key

    def find_by_video(self, video_id: str | None) -> str | None:
        kb = self.knowledge()
        return kb.find_by_video_id(video_id) if (kb and video_id) else None

    def assessment_of(self, rel: str) -> str:
        """The assessment a note links in its frontmatter (the note itself if none)."""
        try:
            data, _ = frontmatter.split(self.paths.gate.read_text(rel))
        except (OSError, PathRefused):
            return rel
        link = (data or {}).get("assessment")
        if isinstance(link, str) and link.startswith("[["):
            cand = link[2:].split("|")[0].split("]]")[0] + ".md"
            try:
                if self.paths.gate.is_file(cand):
                    return self.paths.rel(self.paths.vault / cand)
            except PathRefused:
                pass
        return rel

    def existing(self, key: str, note_path: str | None, content: VideoContent
                 ) -> tuple[str, str] | None:
        """(note, assessment) already in the vault for this job, followed by identity."""
        if note_path and self.owned(self.paths.vault / note_path, key):
            return note_path, self.assessment_of(note_path)
        rel = self.find_by_video(content.meta.video_id)
        if rel:
            return rel, self.assessment_of(rel)
        return None

    # -- composing ---------------------------------------------------------------------
    def compose(self, content: VideoContent, note_path: Path, assess_path: Path, *,
                created: str) -> Composed:
        """Note and assessment text: sanitised, linked, with frontmatter."""
        rel_note = self.paths.rel_any(note_path.parent / note_path.stem) or note_path.stem
        rel_assess = self.paths.rel_any(assess_path.parent / assess_path.stem) or \
            assess_path.stem
        a_fm = notes.assessment_frontmatter(
            content, created=created, notes_link=notes.wikilink(rel_note, note_path.stem))
        sr = SrSettings.load(self.paths.vault, self.paths.gate)
        assessment = notes.compose_note(
            a_fm, sr.deck_body(sanitize_markdown(content.assessment_markdown)))
        n_fm = notes.note_frontmatter(
            content, created=created,
            assessment_link=notes.wikilink(rel_assess, assess_path.stem), sr=sr)
        body = sanitize_markdown(content.note_markdown)
        kb = self.knowledge()
        found: list[tuple[str, str]] = []
        if kb is not None:  # related first: mentions inside links no longer count
            found = kb.related(body, content.key_terms,
                               self_path=self.paths.rel_any(note_path) or note_path.name)
            body = kb.link(body, self_title=note_path.stem)
        body = related_region.with_section(body, [target for _, target in found],
                                           region_tag(self.paths.state, content.meta.key))
        return Composed(notes.compose_note(n_fm, body), assessment,
                        tuple(path for path, _ in found if path))

    # -- writing -----------------------------------------------------------------------
    def create(self, key: str, content: VideoContent) -> WriteResult:
        """New note + assessment under the first free name (never replaces a file)."""
        folder = self.paths.notes
        stem = safe_filename(content.meta.title)
        try:
            self.paths.gate.make_folder(folder)
            for n in range(1, 1000):
                name = numbered(stem, n)
                note_path = folder / f"{name}.md"
                assess_path = folder / f"{name} (Assessment).md"
                note_owner = self.owned(note_path, key)
                assess_owner = self.owned(assess_path, key)
                if note_owner is False or assess_owner is False:
                    continue
                composed = self.compose(content, note_path, assess_path, created=now_iso())
                note_text, assess_text = composed.note, composed.assessment
                try:
                    if not assess_owner:
                        self.paths.gate.write(assess_path, assess_text, create_only=True)
                    if not note_owner:
                        self.paths.gate.write(note_path, note_text, create_only=True)
                except FileExistsError:  # appeared this instant: next name
                    continue
                return WriteResult(self.paths.rel(note_path), self.paths.rel(assess_path),
                                   created=not note_owner, note_text=note_text,
                                   assessment_text=assess_text, related=composed.related)
        except PathRefused as exc:
            raise PathRefusedError.from_gate(exc) from None
        except OSError as exc:
            raise VaultWriteError(f"could not write the note: {exc.strerror or exc}") from exc
        raise VaultWriteError(f"no free file name for {stem!r}")

    def regenerate(self, note_rel: str, assess_rel: str, content: VideoContent, *,
                   note_base: str | None, assess_base: str | None) -> WriteResult:
        """Merge new content into an existing (maybe user-edited) note and assessment."""
        note_path = self.paths.vault / note_rel
        assess_path = self.paths.vault / assess_rel
        if assess_rel == note_rel:  # no assessment linked: make one beside the note
            assess_path = note_path.with_name(f"{note_path.stem} (Assessment).md")
            assess_rel = self.paths.rel_any(assess_path) or assess_rel
        created = now_iso()
        gate = self.paths.gate
        try:
            data, _ = frontmatter.split(gate.read_text(note_path))
            created = str((data or {}).get("created") or created)
        except (OSError, PathRefused):
            pass
        composed = self.compose(content, note_path, assess_path, created=created)
        note_text, assess_text = composed.note, composed.assessment
        conflicts = []
        try:
            for path, new, base in ((note_path, note_text, note_base),
                                    (assess_path, assess_text, assess_base)):
                if not gate.exists(path):
                    gate.write(path, new, create_only=True)
                    continue
                copy = self.merge_file(path, new, base)
                if copy is not None:
                    conflicts.append(copy)
        except PathRefused as exc:
            raise PathRefusedError.from_gate(exc) from None
        except OSError as exc:
            raise VaultWriteError(f"could not write the note: {exc.strerror or exc}") from exc
        return WriteResult(note_rel, assess_rel, created=False, note_text=note_text,
                           assessment_text=assess_text, conflicts=tuple(conflicts),
                           related=composed.related)

    def merge_file(self, path: Path, new: str, base: str | None) -> str | None:
        """Merge ``new`` into the existing file ``path`` against ``base`` (the text we
        last wrote there); blocks the user changed too keep the user's text and their
        new text goes to a conflict copy, whose vault path is returned. Raises OSError
        and PathRefused (every read and write passes the path gate)."""
        gate = self.paths.gate
        current = gate.read_text(path, errors="surrogateescape")
        collided: list[Collision] = []
        if base is None:  # nothing to merge against (a ledger from before
            # merge bases were kept): the whole new text is one collided block
            merged = None
            collided.append(Collision(0, "", [], new.split("\n"), []))
        else:
            merged = regenerate(base, current, new, collided,
                                SrSettings.load(self.paths.vault, gate))
        if merged is not None and merged != current:
            gate.write(path, merged.encode("utf-8", "surrogateescape"))
        if not collided:
            return None
        copy = self._conflict_copy(path, collided)
        log.warning("%s: applied the new version except %d block(s) you had edited too; "
                    "their new text is in %s", self.paths.rel(path), len(collided), copy.name)
        return self.paths.rel(copy)

    def _conflict_copy(self, path: Path, collided: list[Collision]) -> Path:
        """Create the collided blocks' new text beside the note under a free name (a file
        already there, even one of ours from a minute ago, is never replaced)."""
        when = now_iso()
        stem = conflict_copies.copy_name(path.stem, when)[:-3]
        text = conflict_copies.render_copy(self.paths.rel(path), collided, when)
        for n in range(1, 100):
            copy = path.with_name(f"{numbered(stem, n)}.md")
            try:
                return self.paths.gate.write(copy, text, create_only=True)
            except FileExistsError:
                continue
        raise VaultWriteError(f"no free name for a conflict copy of {path.name}")

    def add_related_link(self, note_rel: str, target: str, tag: str,
                         legacy_base: str | None = None) -> bool:
        """Link ``target`` from the Related region of our study note ``note_rel``
        (a compare-and-swap edit: someone typing in the note loses nothing). True when
        the note changed; False when it has no intact region with its ``tag`` (see
        :mod:`vault_tools.related`), links the target already, is full, or is gone."""
        def transform(text: str) -> str:
            return related_region.add_link(text, target, tag, legacy_base=legacy_base) or text

        try:
            # The compare-and-swap editor goes through the gate at every round.
            return edit_inbox(note_rel, transform, rounds=20, gate=self.paths.gate)
        except (OSError, InboxBusy, PathRefused) as exc:
            log.info("left %s as it is (could not add a related link: %s)", note_rel, exc)
            return False
