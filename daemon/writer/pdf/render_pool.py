"""PDF export off the writer's path: a one-process pool renders, the writer files.

After the writer commits a note (ledger ``written``), :meth:`PdfRenderPool.submit` reads
the note and its assessment and hands their text to a process that runs ReportLab
(CPU-bound: a process, so the writer and the GIL are never held up). The rendered
bytes come back to the writer, which puts them in ``PDF/`` mirroring the note folders
with an atomic write and marks the job ``done``. Unchanged text (same content hash as
the last export) is not rendered again. A failed export is logged and never fails the
note: the job is done, the PDF can be made later with ``vaultd pdf``.

Which notes need a PDF, and filing what comes back, is :mod:`daemon.writer.pdf.filing` (the
writer's side); this module only renders.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from daemon.jobs import orphans
from daemon.jobs.warm_start import pool_kwargs, terminate_pool
from daemon.logs import setup_logging

log = logging.getLogger("vaultd.pdf")


@dataclass
class PdfResult:
    note: str  # vault-relative path of the markdown note
    pdf: str  # vault-relative path of the PDF
    data: bytes | None  # None: rendering failed (see warnings)
    digest: str
    warnings: list[str] = field(default_factory=list)


def pdf_path_for(note_rel: str, pdf_folder: str) -> str:
    """``Study Notes/A.md`` -> ``PDF/Study Notes/A.pdf``."""
    return str(PurePosixPath(pdf_folder) / PurePosixPath(note_rel).with_suffix(".pdf"))


def render_many(vault: str, items: list[tuple[str, str, str, str]], theme: str
                ) -> list[PdfResult]:
    """Pool entry point: render (note path, text, pdf path, digest) items to bytes."""
    from vault_tools.pdf import export_pdf

    results = []
    with tempfile.TemporaryDirectory(prefix="vaultd-pdf-") as tmp:
        for note, text, pdf, digest in items:
            out = Path(tmp) / "out.pdf"
            try:
                report = export_pdf(text, out, vault_root=Path(vault),
                                    note_path=Path(note), theme=theme)
                results.append(PdfResult(note, pdf, out.read_bytes(), digest,
                                         report.warnings[:20]))
            except Exception as exc:  # noqa: BLE001 - a PDF must never fail a note
                results.append(PdfResult(note, pdf, None, digest,
                                         [f"{type(exc).__name__}: {exc}"]))
    return results


class PdfRenderPool:
    def __init__(self, vault: Path, pdf_folder: str, theme: str,
                 on_done: Callable[[str | None, list[PdfResult]], None]) -> None:
        self.vault = vault
        self.pdf_folder = pdf_folder
        self.theme = theme
        self.on_done = on_done
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.pending = 0
        self.in_flight: set[str] = set()  # job keys with an export queued or running

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            init, initargs = orphans.initializer(  # the worker dies with the daemon
                setup_logging, logging.getLevelName(log.getEffectiveLevel()))
            # A fork of the generation pool's fork server (daemon.jobs.warm_start); ReportLab
            # is imported by the worker on its first render, not preloaded for all.
            self._pool = ProcessPoolExecutor(max_workers=1, **pool_kwargs(init, initargs))
        return self._pool

    def submit(self, key: str | None, notes: list[tuple[str, str, str]], *,
               theme: str | None = None, pdf_folder: str | None = None) -> None:
        """Render ``(note path, text, digest)`` items; ``on_done(key, results)`` follows.

        Items whose digest matches the last export must be filtered out by the caller
        (it owns the ledger); an empty list completes at once. The caller passes the
        theme (and folder) its digests were made with, so a config reload between the
        two can never file a PDF under the other theme's digest.
        """
        theme = theme or self.theme
        folder = pdf_folder or self.pdf_folder
        items = [(n, text, pdf_path_for(n, folder), digest) for n, text, digest in notes]
        if not items:
            self.on_done(key, [])
            return
        with self._lock:
            if key is not None and key in self.in_flight:
                return  # already queued: a resume tick must not render it twice
            if key is not None:
                self.in_flight.add(key)
            self.pending += 1
        try:
            fut = self._executor().submit(render_many, str(self.vault), items, theme)
        except RuntimeError:  # shutting down or broken pool: the job stays "written"
            with self._lock:
                self.pending -= 1
                self.in_flight.discard(key or "")
            self._pool = None
            return

        def done(f: Future[list[PdfResult]]) -> None:
            try:
                results = f.result()
            except Exception as exc:  # noqa: BLE001 - a dead PDF worker: rebuild, report
                reason = (str(exc) or type(exc).__name__) if not isinstance(
                    exc, CancelledError) else "not rendered: vaultd stopped first"
                log.error("PDF worker failed: %s", reason)
                self._pool = None
                results = [PdfResult(n, p, None, d, [reason]) for n, _t, p, d in items]
            # Hand the results over first: ``pending == 0`` then means every result is
            # already with the writer, which the writer relies on to compare digests.
            self.on_done(key, results)
            with self._lock:
                self.pending -= 1
                self.in_flight.discard(key or "")

        fut.add_done_callback(done)

    def shutdown(self, timeout: float = 15.0) -> None:
        """Finish the export under way (up to ``timeout``), drop queued ones: their jobs
        stay ``written`` and are exported after the next start."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        terminate_pool(pool, timeout)

