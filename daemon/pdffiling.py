"""The writer's side of PDF export: which notes need a PDF, and filing those that return.

Runs on the writer thread only (it writes into the vault and the ledger). A job the
writer has just written is handed to :class:`~daemon.pdfs.PdfExporter` at once
(:meth:`PdfFiling.export_job`); the rendered bytes come back through the writer's queue
and are filed with an atomic write (:meth:`PdfFiling.file`), which also marks the job
``done``. Unchanged text (same digest: text, theme, renderer version) is never rendered
again.

PDFs follow their notes. A note with a PDF that changes afterwards (the user edits it,
a review plugin updates its flashcards, the writer adds a Related back-link) is
re-exported once it has been left alone for ``pdf.refresh_after_seconds``
(:class:`PdfRefresh`): Obsidian saves every couple of seconds while the user types, one
export per pause is enough. After a start or a config reload every exported note is
compared with its digest, a batch per idle pass (:meth:`PdfFiling.idle_pass`), so edits
made while the daemon was stopped and a new theme reach the PDFs too. Re-exports only
start while the PDF pool is idle, so a new note's export never queues behind them.

PDFs are read and written through the path gate (a ``PDF`` folder that is a symlink out
of the vault is refused, said once in the log and ``status``). A PDF is replaced only when
it is ours (its Creator is vaultd, or the ledger has filed one for that note); a user's own
PDF at the target path stays and ours is written beside it as ``<name> (vaultd).pdf``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

from daemon.config import Config
from daemon.ledger import Ledger, StateConflict
from daemon.notefiles import Notices
from daemon.paths import VaultPaths
from daemon.pdfs import PdfExporter, PdfResult, pdf_path_for
from vault_tools.pathgate import PathGate, PathRefused
from vault_tools.pdfhash import content_hash

log = logging.getLogger("vaultd.writer")

AUDIT_BATCH = 100  # notes read per idle pass: a write waits for one batch at most
OUR_PDF = b"/Creator (vaultd)"  # in every PDF vault_tools.pdf renders (its identity)


def put_pdf(gate: PathGate, pdf: str, data: bytes, say: Callable[[str], None]) -> str | None:
    """Write a PDF through the gate over nothing or over one of ours (its Creator is
    vaultd); a user's file at that name stays and ours goes beside it as
    ``<name> (vaultd).pdf``, said through ``say``. Returns the path written (None: both
    names are someone else's)."""
    target = PurePosixPath(pdf)
    if gate.exists(pdf) and not _ours(gate, pdf):
        beside = str(target.with_name(f"{target.stem} (vaultd){target.suffix}"))
        if gate.exists(beside) and not _ours(gate, beside):
            say(f"{pdf} and {beside} are not vaultd's; PDF not written")
            return None
        say(f"{pdf} is not vaultd's; left it alone and wrote {beside}")
        pdf = beside
    gate.write(pdf, data)
    return pdf


def _ours(gate: PathGate, pdf: str) -> bool:
    try:
        return OUR_PDF in gate.read_bytes(pdf, 1 << 30)
    except (OSError, PathRefused):
        return False


class PdfRefresh:
    """Notes whose PDF may be out of date, each due once it has been quiet for ``quiet``
    seconds since it last changed. Obsidian saves every couple of seconds while the user
    types; one export per pause is enough. Writer thread only."""

    def __init__(self, quiet: float = 10.0) -> None:
        self.quiet = quiet
        self._changed: dict[str, float] = {}  # note path -> monotonic time of last change

    def mark(self, note: str, now: float) -> None:
        self._changed.pop(note, None)  # keep the dict in order of last change
        self._changed[note] = now

    def forget(self, note: str) -> None:
        self._changed.pop(note, None)

    def due(self, now: float, limit: int = 8) -> list[str]:
        """Up to ``limit`` notes quiet long enough, taken from the set, oldest change
        first. The limit keeps one render job small (its PDFs come back in one message):
        a new theme makes every note due at once."""
        ready = [n for n, t in self._changed.items() if now - t >= self.quiet][:limit]
        for note in ready:
            del self._changed[note]
        return ready

    def __len__(self) -> int:
        return len(self._changed)


class PdfFiling:
    """Decides what to export and files the results; see the module docstring."""

    def __init__(self, paths: VaultPaths, ledger: Ledger, config: Callable[[], Config],
                 notices: Notices | None = None) -> None:
        self.paths = paths
        self.notices = notices or Notices()
        self.ledger = ledger
        self._config = config  # the writer's current config (replaced on reload)
        self.exporter: PdfExporter | None = None
        self.refresh = PdfRefresh()
        self._audit: Iterator[tuple[str, str]] | None = None
        # run --once: nobody is typing, and the process is about to exit, so changed
        # notes are re-exported at once instead of after the quiet pause.
        self.no_wait = False

    # -- settings ------------------------------------------------------------------------
    def _enabled(self) -> bool:
        return self.exporter is not None and bool(self._config().get("pdf", "enabled"))

    def _refresh_after(self) -> float:
        """Seconds a changed note must stay quiet before its PDF is redone; 0: never."""
        if not self._enabled():
            return 0.0
        self.refresh.quiet = float(self._config().get("pdf", "refresh_after_seconds"))
        return self.refresh.quiet

    def _submit(self, key: str | None, items: list[tuple[str, str, str]], theme: str) -> None:
        assert self.exporter is not None
        self.exporter.submit(key, items, theme=theme,
                             pdf_folder=self._config().get("vault", "pdf_folder"))

    def _read(self, rel: str) -> str | None:
        try:
            return self.paths.gate.read_text(rel)
        except (OSError, PathRefused):
            return None

    # -- new notes -----------------------------------------------------------------------
    def export_job(self, key: str) -> None:
        """A written job: hand its note and assessment to the PDF pool (or finish it)."""
        job = self.ledger.get(key)
        if job is None or not self._enabled():
            self.ledger.mark_done(key)
            return
        theme = self._config().get("pdf", "theme")
        items = []
        for rel in dict.fromkeys(p for p in (job.note_path, job.assessment_path) if p):
            text = self._read(rel)
            if text is None:
                continue
            digest = content_hash(text, theme)
            if self.ledger.pdf_digest(rel) != digest:
                items.append((rel, text, digest))
        self._submit(key, items, theme)

    def file(self, key: str | None, results: list[PdfResult]) -> None:
        """Put rendered PDFs in place, remember their digests, finish the job if any."""
        for r in results:
            if r.data is None:
                log.warning("PDF of %s failed: %s", r.note, "; ".join(r.warnings))
                continue
            if not self.paths.gate.is_file(r.note):
                continue  # deleted while it rendered: no PDF of a note that is gone
            try:
                self._put(r.pdf, r.data)
            except PathRefused as exc:
                self.notices.say(f"PDF of {r.note} not written: {exc.reason}")
                continue
            except OSError as exc:
                log.error("could not write %s: %s", r.pdf, exc)
                continue
            self.ledger.record_pdf(r.note, r.digest)
            for w in r.warnings:
                log.info("PDF %s: %s", r.pdf, w)
        if key is not None:
            try:
                self.ledger.mark_done(key)
            except StateConflict as exc:
                log.warning("%s", exc)

    def _put(self, pdf: str, data: bytes) -> None:
        put_pdf(self.paths.gate, pdf, data, self.notices.say)

    # -- changed notes -------------------------------------------------------------------
    def changed(self, rel: str) -> None:
        """A note changed; if it has a PDF, re-export it once it stays quiet. One of our
        notes counts even before its first PDF is filed: that export may have read the
        text before this change (a back-link added while it renders)."""
        if not self._refresh_after():
            return
        if self.ledger.pdf_digest(rel) is not None or self.ledger.owns_note(rel):
            self.refresh.mark(rel, time.monotonic())

    def forget(self, rel: str) -> None:
        self.refresh.forget(rel)

    def removed(self, rel: str) -> None:
        """The user deleted a note: its PDF goes too, if we exported it (the record says
        so; a PDF of the user's own under that name stays)."""
        self.refresh.forget(rel)
        if self.ledger.pdf_digest(rel) is None:
            return
        pdf = self.paths.vault / pdf_path_for(rel, self._config().get("vault", "pdf_folder"))
        try:
            pdf.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove %s: %s", self.paths.rel_any(pdf), exc)
            return
        self.ledger.pdf_forget(rel)
        log.info("removed %s (its note was deleted)", self.paths.rel_any(pdf))

    def moved(self, old: str, new: str) -> None:
        """The user moved or renamed a note: its PDF moves to the mirrored place (unless
        something is already there) and its export record follows, so later edits keep
        reaching it. The PDF folder is ours; nothing of the user's is touched."""
        self.refresh.forget(old)
        if self.ledger.pdf_digest(old) is None:
            return
        folder = self._config().get("vault", "pdf_folder")
        src, dst = pdf_path_for(old, folder), pdf_path_for(new, folder)
        gate = self.paths.gate
        try:
            if gate.is_file(src) and not gate.exists(dst):
                gate.rename(src, dst)
        except (OSError, PathRefused) as exc:
            log.warning("could not move %s to %s: %s", src, dst,
                        getattr(exc, "reason", exc))
            return
        self.ledger.pdf_moved(old, new)

    def start_audit(self) -> None:
        """Compare every exported note with its PDF's digest over the next idle passes."""
        if self._refresh_after():
            self._audit = iter(self.ledger.pdf_exports())

    def next_look(self) -> float | None:
        """How soon the writer should make an idle pass; None: nothing pending."""
        if self._audit is not None:
            return 0.01
        return (0.05 if self.no_wait else 1.0) if self.refresh else None

    def busy(self) -> bool:
        """Any audit, re-export or render still to come (``run --once`` waits for it)."""
        return self._audit is not None or bool(self.refresh) or \
            bool(self.exporter is not None and self.exporter.pending)

    def idle_pass(self) -> None:
        """The writer has nothing else to do: audit one batch, start due re-exports."""
        self._audit_batch()
        if not self.refresh or self.exporter is None or self.exporter.pending:
            return
        theme = self._config().get("pdf", "theme")
        items = []
        now = time.monotonic() + (self.refresh.quiet if self.no_wait else 0.0)
        for rel in self.refresh.due(now):
            text = self._read(rel)
            if text is None:
                continue
            digest = content_hash(text, theme)
            if self.ledger.pdf_digest(rel) != digest:  # None: no PDF filed yet
                items.append((rel, text, digest))
        if items:
            log.info("re-exporting %d changed note(s) to PDF", len(items))
            self._submit(None, items, theme)

    def _audit_batch(self) -> None:
        if self._audit is None:
            return
        theme = self._config().get("pdf", "theme")
        now = time.monotonic()
        seen = 0
        for rel, digest in itertools.islice(self._audit, AUDIT_BATCH):
            seen += 1
            text = self._read(rel)
            if text is not None and content_hash(text, theme) != digest:
                self.refresh.mark(rel, now - self.refresh.quiet)  # due at once
        if seen < AUDIT_BATCH:
            self._audit = None
