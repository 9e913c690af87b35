"""The vault writer: the only thread that changes files in the vault.

Everything slow (fetching, generating, PDF rendering) happens elsewhere; the writer's
work per video is milliseconds: compose frontmatter, sanitise, create two files
atomically, record the paths in the ledger, and refresh the inbox line. Commands
arrive on a queue (``inbox``, ``write <key>``, ``tick``) and a ``None`` poison pill
stops it after the queue is drained, so nothing accepted is dropped at shutdown.

Identity, not paths: a note belongs to a job by its ``source_key`` frontmatter. Resuming
after a crash finds the note already there and keeps it; a file with the wanted name
that belongs to someone else (a user note) is never touched, the new note gets a
numbered name instead.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daemon.config import Config
from daemon.errors import VaultWriteError
from daemon.intake import InboxSync
from daemon.ledger import Job, Ledger, StateConflict
from daemon.logs import current_job
from daemon.paths import VaultPaths
from vault_tools import notes
from vault_tools.atomic import create_atomic
from vault_tools.filenames import numbered, safe_filename
from vault_tools.inbox import InboxBusy, edit_inbox
from vault_tools.models import VideoContent
from vault_tools.sanitize import sanitize_markdown

log = logging.getLogger("vaultd.writer")

INBOX_TEMPLATE = (
    "# Inbox\n\nPaste YouTube links (or links to .srt/.vtt/.txt files in this vault) "
    "below, one per line. vaultd adds the status after each link.\n\n"
)


@dataclass(frozen=True)
class WriteResult:
    note: str  # vault-relative path
    assessment: str
    created: bool  # False when an existing note of this job was kept


class VaultWriter(threading.Thread):
    def __init__(self, paths: VaultPaths, ledger: Ledger, config: Config, *,
                 on_written: Callable[[str], None] | None = None,
                 inbox_min_interval: float = 0.2) -> None:
        super().__init__(name="vault-writer", daemon=True)
        self.paths = paths
        self.ledger = ledger
        self.config = config
        self.on_written = on_written
        self.inbox_min_interval = inbox_min_interval
        self.sync = InboxSync(paths.vault, paths.inbox, ledger)
        self.queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.inbox_scans = 0  # completed inbox reads (tests and --once wait on this)
        self.vault_missing = False
        self.busy_seconds = 0.0
        self.writes = 0
        self.idle = threading.Event()
        self.on_jobs_added: Callable[[], None] | None = None

    # -- requests (any thread) -------------------------------------------------------
    def request_inbox(self) -> None:
        self.queue.put(("inbox", ""))

    def request_write(self, key: str) -> None:
        self.queue.put(("write", key))

    def request_tick(self) -> None:
        self.queue.put(("tick", ""))

    def stop(self) -> None:
        self.queue.put(None)

    # -- loop ------------------------------------------------------------------------
    def run(self) -> None:
        inbox_dirty = True
        last_inbox = 0.0
        stopping = False
        while not stopping:
            try:
                item = self.queue.get(timeout=self.inbox_min_interval if inbox_dirty else 5.0)
            except queue.Empty:
                item = ("idle", "")
            batch = [item]
            while True:  # drain: coalesce many requests into one pass
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self.idle.clear()
            started = time.perf_counter()
            for cmd in batch:
                if cmd is None:
                    stopping = True
                    continue
                kind, arg = cmd
                if kind == "inbox":
                    inbox_dirty = True
                elif kind == "write":
                    self._safe_write(arg)
                    inbox_dirty = True
                elif kind == "tick":
                    inbox_dirty |= self._resume_due_writes()
            now = time.monotonic()
            if inbox_dirty and (stopping or now - last_inbox >= self.inbox_min_interval):
                self.refresh_inbox()
                inbox_dirty = False
                last_inbox = now
            self.busy_seconds += time.perf_counter() - started
            if self.queue.empty():
                self.idle.set()
        log.debug("writer stopped")

    # -- inbox -----------------------------------------------------------------------
    def ensure_inbox(self) -> None:
        if not self.paths.inbox.exists() and self.paths.vault.is_dir():
            self.paths.inbox.parent.mkdir(parents=True, exist_ok=True)
            edit_inbox(self.paths.inbox, lambda t: t or INBOX_TEMPLATE, create=True)
            log.info("created %s", self.paths.rel(self.paths.inbox))

    def refresh_inbox(self) -> None:
        """Register new sources and bring every source line's status up to date."""
        if not self._vault_ok():
            return
        before = self.ledger.counts()["ready"]
        try:
            self.sync.forget_file_names()
            self.ensure_inbox()
            edit_inbox(self.paths.inbox, self.sync.transform)
        except InboxBusy as exc:
            log.warning("%s", exc)
            self.request_inbox()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot update the inbox: %s", exc)
            return
        finally:
            self.inbox_scans += 1
        if self.ledger.counts()["ready"] != before and self.on_jobs_added:
            self.on_jobs_added()

    def _vault_ok(self) -> bool:
        ok = self.paths.vault.is_dir()
        if ok == self.vault_missing:
            self.vault_missing = not ok
            if ok:
                log.warning("vault %s is back; resuming", self.paths.vault)
            else:
                log.warning("vault %s is missing; pausing writes", self.paths.vault)
        return ok

    # -- notes -----------------------------------------------------------------------
    def _resume_due_writes(self) -> bool:
        due = self.ledger.due_writes()
        for job in due:
            self._safe_write(job.key)
        return bool(due)

    def _safe_write(self, key: str) -> None:
        token = current_job.set(key)
        try:
            job = self.ledger.get(key)
            if job is None or job.state not in ("generated", "written"):
                return
            if not self._vault_ok():
                return
            try:
                if job.state == "generated":
                    result = self.write_job(job)
                    self.ledger.mark_written(key, result.note, result.assessment)
                    log.info("wrote %s", result.note)
                    self.writes += 1
                if self.on_written:
                    self.on_written(key)
                else:
                    self.ledger.mark_done(key)
            except VaultWriteError as exc:
                d = self.config.section("daemon")
                state = self.ledger.write_failed(
                    key, exc.reason, max_attempts=d["max_attempts"],
                    backoff_base=d["backoff_base_seconds"],
                    backoff_max=d["backoff_max_seconds"])
                log.error("write failed (%s): %s", state, exc.reason)
            except StateConflict as exc:
                log.warning("%s", exc)
        finally:
            current_job.reset(token)

    def _owned(self, path: Path, key: str) -> bool | None:
        """True: our note for ``key``; False: someone else's file; None: no file."""
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError:
            return False
        return notes.owner_key(text) == key

    def write_job(self, job: Job) -> WriteResult:
        """Create the note and assessment of a generated job (idempotent)."""
        assert job.content is not None
        content = VideoContent.from_json(job.content)
        folder = self.paths.notes
        # Resume: the note recorded for this job is still ours -> keep it as it is.
        if job.note_path and self._owned(self.paths.vault / job.note_path, job.key):
            assessment = job.assessment_path or job.note_path
            return WriteResult(job.note_path, assessment, created=False)
        stem = safe_filename(content.meta.title)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                name = numbered(stem, n)
                note_path = folder / f"{name}.md"
                assess_path = folder / f"{name} (Assessment).md"
                note_owner = self._owned(note_path, job.key)
                assess_owner = self._owned(assess_path, job.key)
                if note_owner is False or assess_owner is False:
                    continue
                self._create_pair(content, note_path, assess_path,
                                  note_exists=bool(note_owner),
                                  assess_exists=bool(assess_owner))
                return WriteResult(self.paths.rel(note_path), self.paths.rel(assess_path),
                                   created=not note_owner)
        except OSError as exc:
            raise VaultWriteError(f"could not write the note: {exc.strerror or exc}") from exc
        raise VaultWriteError(f"no free file name for {stem!r}")

    def _create_pair(self, content: VideoContent, note_path: Path, assess_path: Path, *,
                     note_exists: bool, assess_exists: bool) -> None:
        rel_note = self.paths.rel(note_path.parent / note_path.stem)
        rel_assess = self.paths.rel(assess_path.parent / assess_path.stem)
        created = datetime.now().astimezone().replace(microsecond=0).isoformat()
        if not assess_exists:
            fm = notes.assessment_frontmatter(
                content, created=created,
                notes_link=notes.wikilink(rel_note, note_path.stem))
            body = sanitize_markdown(content.assessment_markdown)
            create_atomic(assess_path, notes.compose_note(fm, body))
        if not note_exists:
            fm = notes.note_frontmatter(
                content, created=created,
                assessment_link=notes.wikilink(rel_assess, assess_path.stem))
            body = sanitize_markdown(content.note_markdown)
            create_atomic(note_path, notes.compose_note(fm, body))
