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

Supervised: an exception while handling one command does not end the thread. The job
it was for (a write, a known video) fails with the exception as its reason, the error is
logged once with its traceback, and the writer takes the next command. Only an error
outside command handling can end the thread; :mod:`daemon.service.supervisor` then stops the
daemon.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from daemon.config import Config
from daemon.errors import VaultWriteError
from daemon.jobs.ledger import Job, Ledger, StateConflict
from daemon.jobs.state_watch import StateWatch, classify, full_reason
from daemon.logs import current_job
from daemon.paths import VaultPaths
from daemon.secrets import region_tag
from daemon.writer.deletions import (
    UNSEEN_SETTLE,
    PendingDeletions,
    folder_identity,
    unseen_changes,
    vault_whole,
)
from daemon.writer.feeds.subscriptions import Subscriptions
from daemon.writer.graph_keeper import GraphKeeper, write_graph_files
from daemon.writer.inbox_sync import InboxSync
from daemon.writer.maintained_notes import MaintainedNotes, TopicWrite
from daemon.writer.note_files import NoteFiles, Notices, WriteResult
from daemon.writer.pdf.filing import PdfFiling
from daemon.writer.pdf.render_pool import PdfRenderPool
from daemon.writer.vault_knowledge import VaultKnowledge
from vault_tools import frontmatter, notes
from vault_tools import related as related_region
from vault_tools.atomic import remove_stale_temps
from vault_tools.bases_file import BASE_NAME, BASE_TEXT
from vault_tools.inbox import InboxBusy, edit_inbox
from vault_tools.models import VideoContent
from vault_tools.pathgate import PathRefused

log = logging.getLogger("vaultd.writer")

INBOX_TEMPLATE = (
    "# Inbox\n\nPaste YouTube links (or links to .srt/.vtt/.txt files in this vault) "
    "below, one per line. vaultd adds the status after each link.\n\n"
)


class VaultWriter(threading.Thread):
    def __init__(self, paths: VaultPaths, ledger: Ledger, config: Config, *,
                 inbox_min_interval: float = 0.2) -> None:
        super().__init__(name="vault-writer", daemon=True)
        self.paths = paths
        self.ledger = ledger
        self.config = config
        self.inbox_min_interval = inbox_min_interval
        self.sync = InboxSync(paths.vault, paths.inbox, ledger, paths.gate)
        self.notices = Notices()  # foreign files kept, refused paths: logged, in status
        self.queue: queue.Queue[tuple[str, ...] | None] = queue.Queue()
        self.keeper: GraphKeeper | None = None
        self.pdf = PdfFiling(paths, ledger, lambda: self.config, self.notices)
        self.files = NoteFiles(paths, lambda: self.knowledge, self.notices)
        self.maintained = MaintainedNotes(paths, self.files, config.get("topics", "folder"))
        self.subscriptions: Subscriptions | None = None
        self.knowledge: VaultKnowledge | None = None
        self.exclude = {paths.rel_any(paths.inbox), paths.rel_any(paths.graph_note),
                        paths.rel_any(paths.graph_note.with_suffix(".canvas"))}
        self.inbox_scans = 0  # completed inbox reads (tests and --once wait on this)
        self.vault_missing = False
        self.busy_seconds = 0.0
        self.writes = 0
        self.idle = threading.Event()
        self._last_logged: dict[str, float] = {}
        self._inbox_problem: str | None = None  # the inbox is no file (said once)
        # Why the last pass could not read the inbox at all (run --once ends non-zero).
        self.inbox_unread: str | None = None
        self._reported: set[tuple[str, str, str]] = set()  # errors logged with traceback
        self._learned: dict[str, int] = {}  # note path -> hash of the text last indexed
        self._backlinks: deque[tuple[str, str]] = deque()  # (new note, a note it lists)
        self.on_jobs_added: Callable[[], None] | None = None
        self.watch: StateWatch | None = None  # state-folder faults (set by the runner)
        self.deletions = PendingDeletions()  # live deletions until they are confirmed
        self._stop_seen = False

    @property
    def pdfs(self) -> PdfRenderPool | None:
        """The PDF pool (set by the runner; None: no PDFs)."""
        return self.pdf.exporter

    @pdfs.setter
    def pdfs(self, exporter: PdfRenderPool | None) -> None:
        self.pdf.exporter = exporter

    # -- requests (any thread) -------------------------------------------------------
    def request_inbox(self) -> None:
        self.queue.put(("inbox", ""))

    def request_write(self, key: str) -> None:
        self.queue.put(("write", key))

    def request_tick(self) -> None:
        self.queue.put(("tick", ""))

    def note_event(self, kind: str, path: str, dest: str | None) -> None:
        """From the watcher: a markdown file in the vault changed (absolute paths)."""
        self.queue.put(("note", kind, path, dest or ""))

    def is_known_video(self, video_id: str) -> bool:
        """Any thread: does the vault already hold a note for this video?"""
        knowledge = self.knowledge
        return knowledge is not None and knowledge.find_by_video_id(video_id) is not None

    def request_link_existing(self, key: str) -> None:
        self.queue.put(("known", key))

    def request_pdf_done(self, key: str | None, results: list) -> None:  # type: ignore[type-arg]
        self.queue.put(("pdf", key, results))  # type: ignore[arg-type]

    def request_follow(self, fetched: list) -> None:  # type: ignore[type-arg]
        """Feed entries fetched off-thread; appended to the inbox here."""
        self.queue.put(("follow", fetched))  # type: ignore[arg-type]

    def request_pdf_audit(self) -> None:
        """After a config reload: compare every exported note with its PDF again (a new
        theme re-exports them all)."""
        self.queue.put(("pdf-audit", ""))

    def request_graph_note(self, note: str, canvas: str) -> None:
        self.queue.put(("graph", note, canvas))

    def request_topics(self, writes: list[TopicWrite]) -> None:
        """Topic note texts planned by the topic keeper (off this thread)."""
        self.queue.put(("topics", writes))  # type: ignore[arg-type]

    def request_review(self, rel: str, text: str) -> None:
        """This week's review note, planned off this thread."""
        self.queue.put(("review", rel, text))

    def request_rescan(self) -> None:
        """The vault folder is back after it vanished: index it again and follow what
        changed while it was away (deletions seen as it vanished were not counted)."""
        self.queue.put(("rescan", ""))

    def stop(self) -> None:
        self.queue.put(None)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every request queued so far has been handled, including the
        Related back-links those writes caused."""
        done = threading.Event()
        self.queue.put(("barrier", done))  # type: ignore[arg-type]
        return done.wait(timeout)

    # -- loop ------------------------------------------------------------------------
    def run(self) -> None:
        if self.paths.vault.is_dir():
            for path in remove_stale_temps(self.paths.vault):
                log.info("removed a temp file a crash left behind: %s", self.paths.rel(path))
            self.knowledge = VaultKnowledge(self.paths.vault, self.exclude, self.paths.gate)
            self.ensure_base_file()
            self.queue.put(("unseen", ""))  # notes deleted while the daemon was stopped
        audit = True
        while True:
            try:
                if audit:
                    audit = False
                    self.pdf.start_audit()
                self._loop()
                break
            except Exception as exc:
                # Ledger full, damaged or gone: the watch pauses or repairs, and wakes
                # us (tick + inbox) when it is over; the requests in the ledger stay.
                if self.watch is None or not self.watch.report(exc):
                    raise
                self.idle.set()
                if self._stop_seen:
                    break
                time.sleep(1.0)
        log.debug("writer stopped")

    def _loop(self) -> None:
        inbox_dirty = True
        last_inbox = 0.0
        stopping = False
        while not stopping:
            try:
                wait = self.pdf.next_look() or 5.0  # changed notes: come back soon
                settle = self.deletions.wait()
                if settle is not None:
                    wait = min(wait, settle + 0.05)
                item = self.queue.get(timeout=self.inbox_min_interval if inbox_dirty else wait)
            except queue.Empty:
                item = ("idle", "")
            batch = [item]
            barriers: list[object] = []  # wait_idle() callers, released after back-links
            while True:  # drain: coalesce many requests into one pass
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self.idle.clear()
            started = time.perf_counter()
            for cmd in batch:
                if cmd is None:
                    stopping = self._stop_seen = True
                    continue
                if cmd[0] == "barrier":
                    barriers.append(cmd[1])  # set below, once the work it waits for is done
                    continue
                try:
                    inbox_dirty |= self._handle(cmd)
                except Exception as exc:  # noqa: BLE001 - fail this command, take the next
                    self._command_failed(cmd, exc)
                    inbox_dirty = True
            if self.deletions.wait() == 0.0:
                self._guarded(("deletions", ""), self._confirm_deletions)
            now = time.monotonic()
            if inbox_dirty and (stopping or now - last_inbox >= self.inbox_min_interval):
                self._guarded(("inbox", ""), self.refresh_inbox)
                inbox_dirty = False
                last_inbox = now
            # Low priority, one note at a time: a write that arrives waits for one edit.
            while self._backlinks and (stopping or barriers or self.queue.empty()):
                link = self._backlinks.popleft()
                self._guarded(("link", *link), self._link_back, *link)
            if not stopping and self.queue.empty() and not self._backlinks:
                self._guarded(("pdf-idle", ""), self.pdf.idle_pass)
            for barrier in barriers:
                barrier.set()  # type: ignore[attr-defined]
            self.busy_seconds += time.perf_counter() - started
            if self.queue.empty():
                self.idle.set()

    def _handle(self, cmd: tuple[str, ...]) -> bool:
        """Carry out one command; True when the inbox needs a refresh."""
        kind, arg = cmd[0], cmd[1]
        if kind == "write":
            self._safe_write(arg)
            return True
        if kind == "tick":
            return self._resume_due_writes()
        if kind == "note":
            self._note_event(arg, cmd[2], cmd[3] or None)
        elif kind == "graph":
            self._write_graph_note(arg, cmd[2])
        elif kind in ("topics", "review"):
            self._write_maintained(kind, cmd)
        elif kind == "pdf":
            self.pdf.file(arg, cmd[2])  # type: ignore[arg-type]
            return True
        elif kind == "follow" and self.subscriptions is not None:
            report = self.subscriptions.apply(arg)  # type: ignore[arg-type]
            return bool(report.added)
        elif kind == "pdf-audit":
            self.pdf.start_audit()
        elif kind == "known":
            self._link_existing(arg)
            return True
        elif kind == "unseen":
            self._follow_unseen()
        elif kind == "rescan":
            self._rescan()
        return kind == "inbox"

    def _guarded(self, cmd: tuple[str, ...], fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            self._command_failed(cmd, exc)

    def _command_failed(self, cmd: tuple[str, ...], exc: Exception) -> None:
        """An unexpected error in one command: log it once (with the traceback) and,
        when the command was for a job, fail that job with the error as its reason.
        A fault of the state folder (ledger full, damaged or gone) is not the job's: the
        state watch pauses or repairs, and the work resumes from the ledger after it."""
        if self.watch is not None and self.watch.report(exc):
            return
        kind = cmd[0]
        key = cmd[1] if kind in ("write", "known") and isinstance(cmd[1], str) else None
        reason = f"internal error while writing: {type(exc).__name__}: {exc}"
        seen = (kind, type(exc).__name__, str(exc))
        if seen not in self._reported:
            self._reported.add(seen)
            log.error("%s (command %s%s)", reason, kind, f" {key}" if key else "",
                      exc_info=exc, extra={"job": key or ""})
        else:
            log.debug("%s again (command %s)", reason, kind)
        if key is None:
            return
        d = self.config.section("daemon")
        try:
            self.ledger.fail(key, reason, transient=False, max_attempts=d["max_attempts"],
                             backoff_base=d["backoff_base_seconds"],
                             backoff_max=d["backoff_max_seconds"],
                             from_states=("running",) if kind == "known"
                             else ("generated", "written"))
        except Exception as err:  # noqa: BLE001 - e.g. the job moved meanwhile
            log.warning("could not mark %s failed: %s", key, err)

    # -- inbox -----------------------------------------------------------------------
    def ensure_inbox(self) -> None:
        """Create the inbox when missing, through the path gate (the inbox editor opens
        the folder through the gate at every round and works relative to it)."""
        gate = self.paths.gate
        if not gate.exists(self.paths.inbox) and self.paths.vault.is_dir():
            gate.make_folder(self.paths.inbox.parent)
            edit_inbox(self.paths.inbox, lambda t: t or INBOX_TEMPLATE, create=True,
                       gate=gate)
            log.info("created %s", self.paths.rel(self.paths.inbox))

    def refresh_inbox(self) -> None:
        """Register new sources and bring every source line's status up to date."""
        if not self._vault_ok():
            return
        before = self.ledger.counts()["ready"]
        try:
            self.sync.forget_file_names()
            self.ensure_inbox()
            edit_inbox(self.paths.inbox, self.sync.transform, gate=self.paths.gate)
        except InboxBusy as exc:
            log.warning("%s", exc)
            self.request_inbox()
            return
        except FileNotFoundError:
            return
        except PathRefused as exc:
            self.inbox_unread = f"inbox not read: {exc.reason}"
            self.notices.say(self.inbox_unread)
            return
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EFBIG):  # a FIFO, device or folder in
                # the inbox's place, or an inbox too large to read (InboxTooLarge)
                problem = (f"inbox not read: {exc.strerror}" if exc.errno == errno.EFBIG else
                           f"inbox not read: {self.paths.rel(self.paths.inbox)} is "
                           f"{exc.strerror}; put a Markdown file there")
                if self._inbox_problem not in (None, problem):
                    self.notices.forget(self._inbox_problem)
                self._inbox_problem = self.inbox_unread = problem
                self.notices.say(problem)  # once while it lasts
            elif exc.errno in (errno.EACCES, errno.EPERM):  # e.g. saved once with sudo
                problem = (f"inbox not read: {self.paths.rel(self.paths.inbox)}: permission "
                           "denied; vaultd needs to read and write it (and its folder)")
                if self._inbox_problem not in (None, problem):
                    self.notices.forget(self._inbox_problem)
                self._inbox_problem = self.inbox_unread = problem
                self.notices.say(problem)
            else:
                self._log_throttled("inbox", "cannot update the inbox: %s", exc)
            return
        finally:
            self.inbox_scans += 1
        self.inbox_unread = None
        over = self.sync.over_limit  # more source lines than vaultd takes: said, not fatal
        if self._inbox_problem and self._inbox_problem != over:  # said again if it comes back
            self.notices.forget(self._inbox_problem)
            self._inbox_problem = None
        if over:
            self._inbox_problem = over
            self.notices.say(over)
        if self.ledger.counts()["ready"] != before and self.on_jobs_added:
            self.on_jobs_added()

    def _log_throttled(self, topic: str, msg: str, *args: object) -> None:
        """An error that repeats while a condition lasts (disk full) is logged once a
        minute, not on every pass."""
        now = time.monotonic()
        if now - self._last_logged.get(topic, -1e9) >= 60:
            self._last_logged[topic] = now
            log.error(msg, *args)

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
                    self.ledger.mark_written(key, result.note, result.assessment,
                                             note_text=result.note_text,
                                             assessment_text=result.assessment_text)
                    log.info("wrote %s", result.note)
                    self.writes += 1
                self.pdf.export_job(key)
            except VaultWriteError as exc:
                d = self.config.section("daemon")
                reason = exc.reason
                if classify(exc.__cause__ or exc) == "full":  # say why, in words
                    reason = f"{full_reason(self.paths.vault)}: {exc.reason}"
                state = self.ledger.write_failed(
                    key, reason, max_attempts=d["max_attempts"],
                    backoff_base=d["backoff_base_seconds"],
                    backoff_max=d["backoff_max_seconds"])
                self._log_throttled(f"write:{key}", "write failed (%s): %s", state, exc.reason)
            except StateConflict as exc:
                log.warning("%s", exc)
            except PathRefused as exc:  # a folder that leads out of the vault: permanent
                self.ledger.fail(key, exc.reason, transient=False, max_attempts=1,
                                 backoff_base=0, backoff_max=0,
                                 from_states=("generated", "written"))
                log.error("not written: %s", exc.reason)
            except Exception as exc:  # noqa: BLE001 - this job fails, the next one goes on
                self._command_failed(("write", key), exc)
        finally:
            current_job.reset(token)

    def write_job(self, job: Job) -> WriteResult:
        """Create (or, when forced, regenerate) the files of a generated job."""
        assert job.content is not None
        content = VideoContent.from_json(job.content)
        found = self.files.existing(job.key, job.note_path, content)
        if found and job.force:
            result = self.files.regenerate(found[0], found[1], content,
                                           note_base=job.note_text,
                                           assess_base=job.assessment_text)
        elif found:
            # Resume after a crash, or a known video whose note the user may have moved
            # or renamed: follow it, never recreate it.
            result = WriteResult(found[0], found[1], created=False)
        else:
            result = self.files.create(job.key, content)
        written = {}
        if result.created:  # the new note holds exactly what we composed
            written = {result.note: result.note_text}
        for rel in (result.note, result.assessment, *result.conflicts):
            self._learn(rel, written.get(rel))
        if result.related:
            self._backlinks.extend((result.note, rel) for rel in result.related)
        return result

    def _link_back(self, note: str, rel: str) -> None:
        """Add ``note`` to the Related region of ``rel``, a study note it lists, so the
        relation shows from both sides. Only our own study notes (known to the ledger)
        are edited, only inside their marked region (see :mod:`vault_tools.related`);
        the merge base kept for a later regeneration gets the same line."""
        if self.knowledge is None or rel == note or not self.paths.gate.is_file(note):
            return
        job = self.ledger.find_by_note(rel)
        target = self.knowledge.link_target(note)
        if job is None:
            return
        tag = region_tag(self.paths.state, job.key)
        if not self.files.add_related_link(rel, target, tag, legacy_base=job.note_text):
            return
        base = related_region.add_link(job.note_text or "", target, tag,
                                       legacy_base=job.note_text)
        if base is not None:
            self.ledger.set_note_text(job.key, base)
        self._learn(rel)
        self.pdf.changed(rel)

    # -- knowledge -------------------------------------------------------------------
    def _learn(self, rel: str, text: str | None = None) -> None:
        """Index a note and send its graph facts to the keeper — once per content: the
        watcher reports our own writes too, and parsing is most of the writer's time."""
        if self.knowledge is None:
            return
        if text is None:
            try:
                text = self.paths.gate.read_text(rel)
            except (OSError, PathRefused):
                return
        digest = hash(text)
        if self._learned.get(rel) == digest:
            return
        self._learned[rel] = digest
        facts = self.knowledge.note_changed(rel, text)
        if facts is not None and self.keeper is not None:
            self.keeper.update(facts)

    def _link_existing(self, key: str) -> None:
        """A claimed job whose video already has a note: link it, pay nothing."""
        job = self.ledger.get(key)
        vid = key.removeprefix("youtube:")
        rel = self.knowledge.find_by_video_id(vid) if self.knowledge else None
        if job is None or job.state != "running":
            return
        if rel is None:  # gone meanwhile: generate after all
            self.ledger.release(key)
            if self.on_jobs_added:
                self.on_jobs_added()
            return
        self.ledger.mark_done_direct(key, title=Path(rel).stem, note_path=rel,
                                     assessment_path=self.files.assessment_of(rel))
        log.info("already in the vault as %s; linked, not regenerated", rel,
                 extra={"job": key})

    def _note_event(self, kind: str, path: str, dest: str | None) -> None:
        rel = self.paths.rel_any(Path(path))
        if rel is None or self.knowledge is None or rel in self.exclude:
            return  # the inbox and the graph note are not notes of the knowledge base
        if kind == "moved" and dest:
            new = self.paths.rel_any(Path(dest))
            if new is None:
                return
            self.knowledge.note_moved(rel, new)
            if self.keeper is not None:
                self.keeper.rename(rel, new)
            self.ledger.note_moved(rel, new)
            self.pdf.moved(rel, new)
            self.maintained.moved(rel, new)
            self.deletions.discard(new)
            self._learn(new)
        elif kind == "deleted":
            # counted once confirmed: see _confirm_deletions
            self.deletions.add(rel, folder_identity(self.paths.vault))
        elif kind in ("created", "modified", "closed"):
            if self.paths.gate.is_file(rel):
                self.deletions.discard(rel)
                self._learn(rel)
                self.pdf.changed(rel)
                if kind == "created":
                    self._follow_identity(rel)
                    if self.ledger.note_restored(rel):
                        self.request_inbox()  # back from the trash: the line links it again

    def _vault_whole(self) -> bool:
        return vault_whole(self.paths.gate, self.paths.rel_any(self.paths.inbox) or "")

    def _confirm_deletions(self) -> None:
        """Deletions seen live, once quiet for a moment: the user's when the vault is
        still whole; a vault vanishing (``rm -rf``, a sync client, an unmount) deletes
        note after note before its root goes, and none of that is recorded."""
        root = self.deletions.root
        rels = self.deletions.take()
        if not rels:
            return
        same = root is not None and root == folder_identity(self.paths.vault)
        if not same or not self._vault_whole():
            log.warning("%d note deletion(s) seen as the vault %s or its inbox vanished: not "
                        "counted as yours (the vault is rescanned when it is back)",
                        len(rels), self.paths.vault)
            if self._vault_whole():  # already back (copied back, re-synced, remounted)
                self._rescan()
            return
        for rel in rels:
            self._note_deleted(rel)

    def _follow_unseen(self) -> None:
        """Notes of ours deleted (or restored, or moved) while the daemon could not see
        the vault: each ends as the live path leaves it (a missing note is a pending
        deletion, confirmed like one seen live). Only in a whole vault."""
        if self.knowledge is None or not self._vault_whole():
            return
        unseen = unseen_changes(self.ledger, self.paths.gate)
        if unseen.all_gone:
            log.warning("none of the %d study notes vaultd made is in %s (a drive not "
                        "mounted? a sync still under way?): not counted as deleted",
                        unseen.notes, self.paths.vault)
            return
        by_stem: dict[str, list[str]] = {}
        if unseen.missing:
            for entry in self.knowledge.index.entries():
                by_stem.setdefault(Path(entry.path).name.casefold(), []).append(entry.path)
        for rel in unseen.missing:
            candidates = by_stem.get(Path(rel).name.casefold(), [])
            for candidate in candidates:
                self._follow_identity(candidate)  # moved, not deleted: the ledger follows
            if not self.ledger.owns_note(rel):
                for candidate in candidates:  # the saved graph knows it by its old path
                    self._learn(candidate)
            if self.ledger.owns_note(rel) or self.ledger.pdf_digest(rel) is not None:
                # followed if still missing once the vault is quiet
                self.deletions.add(rel, folder_identity(self.paths.vault), UNSEEN_SETTLE)
        for rel in unseen.restored:
            if self.ledger.note_restored(rel):
                log.info("study note %s is back", rel)
                self.request_inbox()

    def _rescan(self) -> None:
        """The vault is back after it vanished: files may have been copied back before
        the watcher was armed again, so index and graph are rebuilt from the vault, then
        what is gone for good is followed as a deletion."""
        if not self.paths.vault.is_dir():
            return
        self.knowledge = VaultKnowledge(self.paths.vault, self.exclude, self.paths.gate)
        self._learned.clear()
        if self.keeper is not None:
            self.keeper.rebuild()
        self._follow_unseen()

    def _note_deleted(self, rel: str) -> None:
        """The user deleted a note (or moved it to the trash; confirmed, see
        :meth:`_confirm_deletions`, or found at start by :meth:`_follow_unseen`). It leaves
        the index, the linker and the graph (the graph note and canvas are re-rendered),
        its PDF goes if it was ours, and if it was a job's study note the inbox line says
        it was deleted and how to make it again."""
        if (self.paths.vault / rel).exists():
            return  # a late event: the note is back already
        self._learned.pop(rel, None)
        self.pdf.removed(rel)
        self.knowledge.note_removed(rel)  # type: ignore[union-attr]
        if self.keeper is not None:
            self.keeper.remove(rel)
        key = self.ledger.note_deleted(rel)
        if key is not None:
            log.info("study note %s was deleted; vaultd regenerate %s makes it again",
                     rel, key, extra={"job": key})
            self.request_inbox()

    def _follow_identity(self, rel: str) -> None:
        """A note of ours appeared under a new path (a move the watcher saw as delete +
        create, or one made while the daemon was down): point its job at it."""
        try:
            text = self.paths.gate.read_text(rel)
        except (OSError, PathRefused):
            return
        key = notes.owner_key(text)
        job = self.ledger.get(key) if key else None
        if job is None:
            return
        data, _ = frontmatter.split(text)
        old = job.assessment_path if (data or {}).get("type") == "assessment" else job.note_path
        if old and old != rel and not self.paths.gate.exists(old):
            self.ledger.note_moved(old, rel)
            self.pdf.moved(old, rel)
            log.info("followed %s to %s", old, rel, extra={"job": job.key})

    def _write_graph_note(self, note: str, canvas: str) -> None:
        if not self._vault_ok():
            return
        try:
            for line in write_graph_files(self.paths.gate, self.paths.graph_note, note, canvas):
                self.notices.say(line)
        except PathRefused as exc:
            self.notices.say(f"graph note not written: {exc.reason}")
        except OSError as exc:
            self._log_throttled("graph", "could not write the graph note: %s", exc)

    # -- maintained notes: topics, weekly review, the Bases view ---------------------
    def _write_maintained(self, kind: str, cmd: tuple) -> None:  # type: ignore[type-arg]
        # A vault being removed (its inbox gone already) would make a topic note that is
        # missing count as one the user deleted, and never come back.
        if not self._vault_ok() or not self._vault_whole():
            return
        try:
            if kind == "topics":
                for line in self.maintained.apply_topics(cmd[1]):
                    log.info("topic note %s", line)
            else:
                outcome = self.maintained.write(cmd[1], cmd[2])
                log.info("weekly review %s: %s", cmd[1], outcome)
        except OSError as exc:
            self._log_throttled(kind, "could not write the %s note(s): %s", kind, exc)

    def ensure_base_file(self) -> None:
        """``Study Notes.base`` at the vault root, created once; never over a file."""
        try:
            outcome = self.maintained.create_once(BASE_NAME, BASE_TEXT)
            if outcome == "created":
                log.info("created %s", BASE_NAME)
            elif outcome == "yours":
                log.info("kept your own %s (vaultd did not create it and never replaces "
                         "it): there is no vaultd-managed study notes view; delete or "
                         "rename yours to get it at the next start", BASE_NAME)
        except OSError as exc:
            log.warning("could not create %s: %s", BASE_NAME, exc)
