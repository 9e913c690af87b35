"""Watch the vault: tell the writer when the inbox (or any note) changed.

One watchdog observer on the vault folder, recursive, so both ways editors save work:
in-place writes (modified) and write-temp-then-rename (moved onto the inbox path).
The arrival of a subtitle file counts as an inbox change too (a link may have been
waiting for it). Inbox events are debounced: a burst of keystroke saves becomes one read after
``debounce`` seconds of quiet. Watchers miss events (overflowing inotify queues, network
folders, sync clients), so the daemon also rescans on a timer; ``polling=True`` uses
watchdog's PollingObserver for folders where OS events do not arrive at all.

The daemon's own writes also produce events; they are harmless because reading the
inbox is idempotent (the writer skips text it has already processed).

Supervised (:mod:`daemon.supervisor`): an error while handling one event is logged and
the observer goes on; :meth:`VaultWatcher.healthy` is False when the observer or one of
its emitter threads died anyway, and the daemon then stops and exits non-zero.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from vault_tools.atomic import is_temp_file
from vault_tools.sources import SUBTITLE_EXTS

log = logging.getLogger("vaultd.watcher")

IGNORED_PARTS = {".obsidian", ".trash", ".vaultd", ".git"}

EMITTER_GRACE = 10.0  # seconds an emitter may be dead while the vault is there

NoteCallback = Callable[[str, str, str | None], None]  # (event type, path, dest path)


def _norm(path: str | bytes) -> str:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return os.path.normcase(os.path.abspath(path))


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: VaultWatcher) -> None:
        self.w = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._event(event)
        except Exception:  # noqa: BLE001 - one odd event must not end the observer
            log.exception("could not handle %s of %s", event.event_type, event.src_path)

    def _event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [_norm(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(_norm(dest))
        if any(p == self.w.inbox for p in paths) or (
            event.is_directory and any(self.w.inbox.startswith(p + os.sep) for p in paths)
        ):
            self.w.inbox_touched()
        elif not event.is_directory and event.event_type in ("created", "moved", "closed") \
                and self.w.is_subtitle(paths[-1]):
            self.w.inbox_touched()  # a linked subtitle file that was missing may be here now
        if self.w.on_note is not None and not event.is_directory:
            self.w.note_event(event.event_type, paths[0], paths[1] if dest else None)


class VaultWatcher:
    """Debounced inbox notifications plus raw note events for the vault index."""

    def __init__(self, vault: Path, inbox: Path, on_inbox: Callable[[], None], *,
                 debounce: float = 0.5, polling: bool = False,
                 on_note: NoteCallback | None = None) -> None:
        self.vault = _norm(str(vault))
        self.inbox = _norm(str(inbox))
        self.on_inbox = on_inbox
        self.on_note = on_note
        self.debounce = debounce
        self.polling = polling
        self._timer: threading.Timer | None = None
        self._burst_started: float | None = None
        self.max_wait = max(2.0, 4 * debounce)
        self._lock = threading.Lock()
        self._observer: Observer | PollingObserver | None = None
        self._emitter_dead_since: float | None = None

    def start(self) -> None:
        observer = PollingObserver(timeout=1.0) if self.polling else Observer()
        observer.schedule(_Handler(self), self.vault, recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        log.info("watching %s (%s)", self.vault, "polling" if self.polling else "os events")

    def stop(self) -> None:
        with self._lock:
            if self._timer:
                self._timer.cancel()
        observer, self._observer = self._observer, None  # stopped on purpose: healthy
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    @property
    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def threads(self) -> list[threading.Thread]:
        """The observer's threads (dispatcher and emitters), for the supervisor."""
        observer = self._observer
        return [] if observer is None else [observer, *observer.emitters]

    def healthy(self) -> bool:
        """False when the observer thread died while it should run, or an emitter
        thread has been dead for ``EMITTER_GRACE`` seconds with the vault folder present
        (a vanished vault stops its emitter; the daemon re-arms the watcher when the
        folder is back). A watcher stopped on purpose is healthy."""
        observer = self._observer
        if observer is None:
            return True
        if not observer.is_alive():
            return False
        if all(e.is_alive() for e in observer.emitters) or not os.path.isdir(self.vault):
            self._emitter_dead_since = None
            return True
        now = time.monotonic()
        if self._emitter_dead_since is None:
            self._emitter_dead_since = now
        return now - self._emitter_dead_since < EMITTER_GRACE

    def inbox_touched(self) -> None:
        """Debounce, with a ceiling: someone saving more often than ``debounce`` (an
        editor autosaving while they type) still gets the inbox read every
        ``max_wait`` seconds."""
        with self._lock:
            now = time.monotonic()
            if self._timer:
                self._timer.cancel()
            if self._burst_started is None:
                self._burst_started = now
            delay = self.debounce
            if now - self._burst_started >= self.max_wait:
                delay = 0.0
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._burst_started = None
        self.on_inbox()

    def _is_note(self, path: str) -> bool:
        """A markdown note of the user's vault: not in a hidden or tool folder (trash,
        settings, our own), not a temp file of an editor, sync tool or ours."""
        rel_parts = Path(path).parts[len(Path(self.vault).parts):]
        return path.endswith(".md") and not is_temp_file(os.path.basename(path)) and \
            not any(part in IGNORED_PARTS or part.startswith(".") for part in rel_parts[:-1])

    def is_subtitle(self, path: str) -> bool:
        """A subtitle file in the vault (not hidden, not a temp file): the inbox may link
        it before it exists, so its arrival calls for an inbox pass."""
        rel_parts = Path(path).parts[len(Path(self.vault).parts):]
        return path.lower().endswith(SUBTITLE_EXTS) and not is_temp_file(
            os.path.basename(path)) and not any(p.startswith(".") for p in rel_parts)

    def note_event(self, kind: str, path: str, dest: str | None) -> None:
        """Report note changes. A move that crosses the line between notes and the rest
        is what it means for the vault: a temp file renamed over a note (how many editors,
        sync tools and vaultd save) is that note changing, a note moved to ``.trash`` is
        a deletion. A note "moved" to a temp name that is still there was swapped
        (``renameat2(RENAME_EXCHANGE)``, how vaultd edits files) or backed up first."""
        assert self.on_note is not None
        if kind == "moved" and dest is not None:
            src_note, dest_note = self._is_note(path), self._is_note(dest)
            if src_note and dest_note:
                self.on_note("moved", path, dest)
            elif dest_note:
                self.on_note("created", dest, None)
            elif src_note:  # gone to the trash, or swapped with a temp file and still here
                self.on_note("created" if os.path.exists(path) else "deleted", path, None)
            return
        if self._is_note(path):
            self.on_note(kind, path, dest)
