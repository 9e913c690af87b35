"""From inbox text to ledger jobs, and from ledger state back to inbox annotations.

:meth:`InboxSync.transform` is the compare-and-swap transform the writer applies to
``inbox.md``: it parses the text, registers every source in the ledger (idempotent: the
same video in any URL form is one key), and renders each source line's status from the
ledger. Being a function of (text, ledger) it can be re-run on every retry of the swap.

Subtitle- and media-file links are resolved here, where the vault is visible: a path
relative to the vault, to the inbox's folder, or (Obsidian style) a unique file name
anywhere in the vault. A media file is keyed by its content fingerprint
(:mod:`daemon.sources.media`), and only once it has stopped changing (a recording still
being copied in is picked up by a later scan). Every candidate is checked by the path
gate (:mod:`vault_tools.pathgate`): paths that leave the vault (``..``, absolute, ``~``,
drive letters, a symlink out) and files that are not regular files (a FIFO, a device)
are refused with the gate's reason. The dispatcher (subtitles) and the transcriber
(media) read the file through the gate again when they run the job.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import JobError
from daemon.jobs.ledger import NOTE_DELETED, Job, Ledger
from daemon.sources import media
from vault_tools.inbox import (
    MAX_SOURCE_LINES,
    InboxLine,
    Status,
    lines_by_index,
    parse_inbox,
    strip_annotation,
)
from vault_tools.notes import wikilink
from vault_tools.pathgate import PathGate, PathRefused, clean_typed, file_kind
from vault_tools.sources import FILE_KINDS, SourceRef
from vault_tools.unhandled import unhandled_links

log = logging.getLogger("vaultd.intake")

MISSING_FILE = "subtitle file not found in the vault"  # a job failed so comes back by itself
MISSING_MEDIA = "media file not found in the vault"


@dataclass(frozen=True)
class Resolved:
    key: str
    kind: str
    url: str | None
    error: str | None = None


class InboxSync:
    def __init__(self, vault: Path, inbox: Path, ledger: Ledger,
                 gate: PathGate | None = None) -> None:
        self.vault = vault
        self.gate = gate or PathGate(vault)
        self.inbox = inbox
        self.ledger = ledger
        self._name_index: dict[str, list[str]] | None = None
        self.last_lines: list[InboxLine] = []
        self._parsed: tuple[str, list[InboxLine]] | None = None
        # The state folder's fault ("waiting: disk full (N MB free)"), set by the runner:
        # unfinished lines say it instead of "working".
        self.pause: Callable[[], str | None] = lambda: None
        self._prints = media.Fingerprints()  # media file -> content key, read when changed
        self.unsettled = 0  # media files the last pass skipped as still being copied in
        # Said in status when the inbox holds more source lines than vaultd takes.
        self.over_limit: str | None = None
        # Set by the runner: how far a job's transcription got ("transcribing 3:00 of 58:00")
        self.progress: Callable[[str], str | None] = lambda _key: None

    # -- resolution --------------------------------------------------------------
    def _check(self, rel: str) -> tuple[str | None, str | None]:
        """(real vault-relative path of a regular file, or None; the gate's refusal)."""
        try:
            real = self.gate.rel(rel)
            st = self.gate.stat(real)
        except PathRefused as exc:
            return None, exc.reason
        except OSError:
            return None, None
        if not stat.S_ISREG(st.st_mode):
            return None, (None if stat.S_ISDIR(st.st_mode)
                          else f"{rel} is {file_kind(st.st_mode)}, not a file")
        return real, None

    def _by_name(self, name: str) -> list[str]:
        """Vault paths of files with this name (any case), hidden folders skipped. Names
        are listed without opening anything; each candidate is checked by the gate when
        it is looked up, so a FIFO or a symlink out is never a match."""
        if self._name_index is None:
            index: dict[str, list[str]] = {}
            for root, dirs, files in os.walk(self.gate.root):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for f in files:
                    if f.lower().endswith(tuple(FILE_KINDS)):
                        rel = (Path(root) / f).relative_to(self.gate.root).as_posix()
                        index.setdefault(f.lower(), []).append(rel)
            self._name_index = index
        return self._name_index.get(name.lower(), [])

    def resolve(self, ref: SourceRef) -> Resolved | None:
        """Ledger identity of a source; None for a bare path that names no file."""
        if ref.kind not in ("file", "media"):
            return Resolved(ref.key, ref.kind, ref.canonical_url or ref.text, ref.error)
        kind, target = ref.kind, ref.ident
        inbox_dir = posixpath.dirname(self.gate.relative(self.inbox))
        candidates: list[str] = []
        refusal: str | None = None
        for base in ("", inbox_dir):
            try:
                typed = clean_typed(target, base)
                candidates.append(self.gate.relative(typed))
            except PathRefused as exc:
                refusal = refusal or exc.reason
            if posixpath.isabs(target) or target.startswith("~"):
                break
        for cand in dict.fromkeys(candidates):
            rel, why = self._check(cand)
            if rel:
                return self._found(kind, rel)
            refusal = refusal or why
        if "/" not in target and "\\" not in target and not refusal:
            found: list[str] = []
            for cand in self._by_name(Path(target).name):
                rel, why = self._check(cand)
                if rel:
                    found.append(rel)
                refusal = refusal or why
            if len(found) == 1:
                return self._found(kind, found[0])
            if len(found) > 1:
                return Resolved(f"{kind}:{target}", kind, target,
                                f"{len(found)} files are named {target}; link one by its path")
        if ref.bare and not refusal:
            return None
        missing = MISSING_MEDIA if kind == "media" else MISSING_FILE
        reason = refusal or f"{missing}: {target}"
        return Resolved(f"{kind}:{target}", kind, target, reason)

    def _found(self, kind: str, rel: str) -> Resolved | None:
        """A file the gate let through: subtitles by path, media by content (once settled)."""
        if kind != "media":
            return Resolved(f"file:{rel}", "file", rel)
        try:
            key = self._prints.key_of(self.gate, rel)
            if key is None:
                self.unsettled += 1  # run --once waits for it (Daemon.finished)
                return None  # still being copied in: identified at a later scan
            return Resolved(key, "media", rel)
        except JobError as exc:
            return Resolved(f"media:{rel}", "media", rel, exc.reason)
        except OSError as exc:
            return Resolved(f"media:{rel}", "media", rel,
                            f"cannot read {rel}: {exc.strerror or exc}")

    def forget_file_names(self) -> None:
        """Drop the file-name cache (call once per scan: files come and go)."""
        self._name_index = None

    # -- the transform -------------------------------------------------------------
    def register(self, text: str) -> list[tuple[InboxLine, list[Resolved]]]:
        if self._parsed is not None and self._parsed[0] == text:
            lines = self._parsed[1]  # unchanged since the last pass: parsing is the cost
        else:
            lines = parse_inbox(text, MAX_SOURCE_LINES + 1)
            self._parsed = (text, lines)
        self.over_limit = None
        if len(lines) > MAX_SOURCE_LINES:  # the rest wait, unannotated, until there is room
            lines = lines[:MAX_SOURCE_LINES]
            self.over_limit = (
                f"{self.gate.relative(self.inbox)} has more than {MAX_SOURCE_LINES:,} source "
                f"lines; vaultd reads the first {MAX_SOURCE_LINES:,} (up to line "
                f"{lines[-1].index + 1:,}): move done lines to another note")
        out = []
        new: list[Resolved] = []
        self.unsettled = 0
        for line in lines:
            resolved = [r for r in (self.resolve(ref) for ref in line.sources) if r]
            if resolved:
                out.append((line, resolved))
                new.extend(resolved)
        if self.pause():
            return out  # the ledger cannot take new rows now; the lines say why
        added = self.ledger.add_many([(r.key, r.kind, r.url, r.error) for r in new])
        self.ledger.set_urls([(r.key, r.url) for r in new
                              if r.kind == "media" and r.url and not r.error])
        for key in added:
            log.info("queued %s", key, extra={"job": key})
        self._revive_found([r.key for r in new if r.kind == "file" and r.error is None])
        self.last_lines = [line for line, _ in out]
        return out

    def _revive_found(self, keys: list[str]) -> None:
        """A subtitle file that was missing is there now: its failed job becomes ready
        (the watcher asks for a pass when such a file appears; the periodic rescan is
        the backstop)."""
        jobs = self.ledger.get_many(keys) if keys else {}
        back = [k for k, j in jobs.items()
                if j.state == "failed" and (j.last_error or "").startswith(MISSING_FILE)]
        for key in self.ledger.retry(back) if back else []:
            log.info("the subtitle file of %s is there now; queued", key, extra={"job": key})

    def transform(self, text: str) -> str:
        from vault_tools.inbox import annotate

        entries = self.register(text)
        keys = [r.key for _, rs in entries for r in rs]
        jobs = self.ledger.get_many(keys)
        children = self.ledger.children_of([k for k in keys if k.startswith("playlist:")])
        statuses: dict[int, Status | None] = {}
        expected: dict[int, str] = {}
        pause = self.pause()
        for line, resolved in entries:
            status = line_status([jobs.get(r.key) for r in resolved], children)
            if pause and status.state in ("queued", "working", "waiting"):
                status = Status("waiting", pause.removeprefix("waiting: "))
            elif status.state == "working" and len(resolved) == 1 and \
                    (heard := self.progress(resolved[0].key)):
                status = Status("working", heard)
            if status.render() != line.annotation:
                statuses[line.index] = status
                expected[line.index] = line.body
        follow_channel_lines(text, statuses, expected)
        return annotate(text, statuses, expected) if statuses else text


def follow_channel_lines(text: str, statuses: dict[int, Status | None],
                         expected: dict[int, str]) -> None:
    """A YouTube channel page pasted in the inbox is no source, but its line says how to
    follow it (see :mod:`vault_tools.unhandled`)."""
    found_links = unhandled_links(text, channels_only=True)
    lines = lines_by_index(text, [f.line for f in found_links]) if found_links else {}
    for found in found_links:
        if found.line not in statuses:
            body, annotation = strip_annotation(lines[found.line])
            status = Status("follow", found.follow)
            if status.render() != annotation:
                statuses[found.line] = status
                expected[found.line] = body


def job_status(job: Job | None, children: dict[str, list[Job]]) -> Status:
    if job is None:
        return Status("queued")
    if job.kind == "playlist" and job.key in children and job.state in ("done", "running"):
        kids = children[job.key]
        done = sum(1 for k in kids if k.state == "done")
        failed = sum(1 for k in kids if k.state == "failed")
        if done + failed < len(kids):
            return Status("working", f"{done} of {len(kids)} done")
        if failed:
            return Status("failed", f"{failed} of {len(kids)} videos failed, {done} done "
                                    "(see vaultd status)")
        return Status("done", f"{done} of {len(kids)} done; for its new videos too, add "
                              f'"{job.key[9:]}" to subscriptions.playlists in '
                              ".vaultd/config.toml")
    if job.state == "ready":
        return Status("waiting", job.last_error or "") if job.waiting else Status("queued")
    if job.state in ("generated", "written") and job.waiting:
        return Status("waiting", job.last_error or "")  # e.g. the vault's disk is full
    if job.state in ("running", "generated", "written"):
        return Status("working")
    if job.state == "done":
        if job.last_error == NOTE_DELETED:
            return Status("deleted", job.key)
        if job.note_path:
            rel = job.note_path[:-3] if job.note_path.endswith(".md") else job.note_path
            return Status("done", wikilink(rel, rel.rsplit("/", 1)[-1]))
        return Status("done", "done")
    return Status("failed", job.last_error or "unknown error")


def line_status(jobs: list[Job | None], children: dict[str, list[Job]]) -> Status:
    statuses = [job_status(j, children) for j in jobs]
    if len(statuses) == 1:
        return statuses[0]
    states = {s.state for s in statuses}
    done = [s for s in statuses if s.state == "done"]
    if states <= {"done"}:
        return Status("done", ", ".join(s.detail for s in done))
    if states & {"queued", "working", "waiting"}:
        if states == {"queued"}:
            return Status("queued")
        return Status("working", f"{len(done)} of {len(statuses)} done")
    failed = [s for s in statuses if s.state == "failed"]
    if not failed:  # done, and some notes the user deleted
        gone = [f"note of {s.detail} deleted" for s in statuses if s.state == "deleted"]
        return Status("done", ", ".join([s.detail for s in done] + gone))
    return Status("failed", f"{failed[0].detail}; {len(done)} of {len(statuses)} done")
