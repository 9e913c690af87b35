"""Notes vaultd maintains after writing them: topic notes and weekly review notes.

Owns the registry ``<state>/maintained.json`` and the one way these notes are written.
The registry holds each topic (id, name, note path, member study notes) and, per file
vaultd wrote, the exact text it last wrote there (the merge base) and whether the user
deleted it. Writing follows the study notes' rules (:meth:`NoteFiles.merge_file`):

* no file and never written: created (the path gate's create-only write: never over a
  file);
* ours (we wrote it before and it is still there): the new text is merged with the
  user's edits against the base; blocks both changed keep the user's text and the new
  text goes to a conflict copy;
* written before but gone: the user deleted it; it is not recreated unless ``restore``;
* a file we did not write under the wanted name (or one that no longer says it is our
  kind of note: a file of yours put where ours was) is never touched: a new topic takes
  the next free name (``Name (2).md``); a review note is skipped with a warning.

Called on the writer thread (the daemon) or by a CLI command, maybe at the same time:
every change is a read-modify-write of the registry under a file lock
(:meth:`MaintainedNotes.transaction`); the topic keeper reads it from its own thread.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from daemon.paths import VaultPaths
from daemon.writer.note_files import NoteFiles
from vault_tools import frontmatter
from vault_tools.atomic import write_atomic
from vault_tools.filenames import numbered, safe_filename
from vault_tools.pathgate import PathRefused
from vault_tools.topic_note import TopicRecord

log = logging.getLogger("vaultd.topics")

REGISTRY = "maintained.json"


@dataclass(frozen=True)
class TopicWrite:
    """A topic note to write: from the topic keeper to the writer."""

    topic_id: str
    name: str
    members: tuple[str, ...]
    text: str
    tokens: int = 0  # model tokens this text cost (0 offline or from the cache)
    cost_usd: float = 0.0


class MaintainedNotes:
    def __init__(self, paths: VaultPaths, files: NoteFiles, topics_folder: str) -> None:
        self.paths = paths
        self.topics_folder = topics_folder
        self.files = files
        self.path = paths.state / REGISTRY
        self.lock = threading.RLock()
        self.data: dict[str, Any] = {}
        self._load()

    def _load(self) -> None:
        """(Re)read the registry: the daemon and a ``vaultd topics`` / ``review`` command
        may both change it, so every change starts from the file (see transaction)."""
        data: dict[str, Any] = {"next_id": 1, "topics": {}, "files": {}, "usage": {}}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                data.update(loaded)
        except (OSError, ValueError):
            pass
        self.data = data

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Read-modify-write of the registry under a file lock shared with other
        processes of this vault (the daemon and a CLI command), saved at the end."""
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(self.path.with_suffix(".lock"), "a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                self._load()
                try:
                    yield
                finally:
                    write_atomic(self.path, json.dumps(self.data, ensure_ascii=False,
                                                       sort_keys=True))

    # -- reading (any thread) --------------------------------------------------------
    def topic_records(self) -> list[TopicRecord]:
        with self.lock:
            self._load()
            return [TopicRecord(tid, t["name"], list(t["members"]))
                    for tid, t in sorted(self.data["topics"].items())]

    def new_topic_id(self) -> str:
        with self.transaction():
            n = int(self.data["next_id"])
            self.data["next_id"] = n + 1
            return f"t{n}"

    def live_topics(self) -> list[tuple[str, str, list[str]]]:
        """(note path, name, members) of the topic notes that exist now."""
        with self.lock:
            self._load()
            items = [(t.get("path"), t["name"], list(t["members"]))
                     for t in self.data["topics"].values() if not t.get("retired")]
        return [(p, n, m) for p, n, m in items if p and self.paths.gate.is_file(p)]

    def tokens_today(self, today: date | None = None) -> int:
        """Model tokens topic synthesis used today (the daily cap counts these)."""
        day = (today or date.today()).isoformat()
        with self.lock:
            self._load()
            return int((self.data["usage"].get(day) or {}).get("tokens", 0))

    # -- writing (the writer thread, or a CLI command) -------------------------------
    def apply_topics(self, writes: list[TopicWrite], *, restore: bool = False,
                     report_deleted: bool = False) -> list[str]:
        """Write the topic notes; topics not in ``writes`` are retired (their notes stay
        as the user has them). Returns one line per note written, for logs and the CLI;
        with ``report_deleted`` (the CLI) also one per note kept deleted."""
        done = []
        wanted = {w.topic_id for w in writes}
        with self.transaction():
            for tid, t in self.data["topics"].items():
                t["retired"] = tid not in wanted
            for w in writes:
                rec = self.data["topics"].setdefault(w.topic_id, {"name": w.name})
                rec.update(members=list(w.members), retired=False)
                if w.tokens:
                    day = self.data["usage"].setdefault(date.today().isoformat(),
                                                        {"tokens": 0, "cost_usd": 0.0})
                    day["tokens"] += w.tokens
                    day["cost_usd"] = round(day["cost_usd"] + w.cost_usd, 6)
                if not rec.get("path"):
                    rec["path"] = self._free_topic_path(rec["name"])
                outcome = self.apply_one(rec["path"], w.text, restore)
                if outcome == "deleted" and report_deleted:
                    done.append(f"not made again (you deleted it): {rec['path']}; "
                                "--restore brings it back")
                elif outcome not in ("unchanged", "deleted"):
                    done.append(f"{outcome}: {rec['path']}")
        return done

    def _free_topic_path(self, name: str) -> str:
        stem = safe_filename(name)
        for n in range(1, 1000):
            rel = f"{self.topics_folder.rstrip('/')}/{numbered(stem, n)}.md"
            known = rel in self.data["files"]
            taken_by_topic = any(t.get("path") == rel for t in self.data["topics"].values())
            if not self.paths.gate.exists(rel) and not known and not taken_by_topic:
                return rel
        raise OSError(f"no free file name for topic {name!r}")

    def _same_kind(self, rel: str, text: str) -> bool:
        """The file still says it is our kind of note (``type:``): a file the user put
        in place of a deleted one is theirs, not an edit of ours."""
        try:
            current = self.paths.gate.read_text(rel)
        except (OSError, PathRefused):
            return False
        return frontmatter.read(current)[0].get("type") == frontmatter.read(text)[0].get("type")

    def write(self, rel: str, text: str, *, restore: bool = False) -> str:
        """Create or merge one maintained note (see the module docstring): returns
        ``created``, ``updated``, ``unchanged``, ``deleted`` or ``foreign``. Every read
        and write passes the path gate: a folder that leads out of the vault (a symlink)
        is refused, as ``foreign``."""
        with self.transaction():
            return self.apply_one(rel, text, restore)

    def _write(self, rel: str, text: str, *, restore: bool) -> str:
        gate = self.paths.gate
        rec = self.data["files"].get(rel)
        base = rec.get("base") if rec else None
        if not gate.exists(rel):
            if rec is not None and not restore:
                if not rec.get("deleted"):
                    log.info("%s was deleted; not recreated (vaultd topics --restore)", rel)
                    rec["deleted"] = True
                return "deleted"
            gate.make_folder(rel.rsplit("/", 1)[0] if "/" in rel else "")
            try:
                gate.write(rel, text, create_only=True)
            except FileExistsError:
                return "foreign"
            outcome = "created"
        elif rec is None or base is None or not self._same_kind(rel, text):
            log.warning("%s is not a note vaultd wrote; leaving it alone", rel)
            return "foreign"
        elif base == text:
            return "unchanged"
        else:
            self.files.merge_file(self.paths.vault / rel, text, base)
            outcome = "updated"
        self.data["files"][rel] = {"base": text, "deleted": False}
        return outcome

    def apply_one(self, rel: str, text: str, restore: bool) -> str:
        try:
            return self._write(rel, text, restore=restore)
        except PathRefused as exc:
            log.warning("%s not written: %s", rel, exc.reason)
            return "foreign"

    def create_once(self, rel: str, text: str) -> str:
        """Create ``rel`` if it was never created before and no file has that name (the
        Bases view): a file of yours is never replaced, one you deleted stays deleted.
        Returns ``created``, ``ours`` (created before), ``yours`` (a file vaultd did not
        create has the name) or ``refused`` (the path gate said no)."""
        with self.transaction():
            if rel in self.data["files"]:
                return "ours"
            try:
                self.paths.gate.write(rel, text, create_only=True)
            except FileExistsError:
                return "yours"
            except PathRefused:
                return "refused"
            self.data["files"][rel] = {"base": None, "deleted": False}
            return "created"

    def moved(self, old: str, new: str) -> None:
        """You moved or renamed a maintained note: keep maintaining it where it is now."""
        with self.lock:  # any note's move comes here: most are none of ours
            self._load()
            if old not in self.data["files"]:
                return
        with self.transaction():
            rec = self.data["files"].pop(old, None)
            if rec is None:
                return
            self.data["files"][new] = rec
            for topic in self.data["topics"].values():
                if topic.get("path") == old:
                    topic["path"] = new
        log.info("following the maintained note %s to %s", old, new)
