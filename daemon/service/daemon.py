"""The daemon: wires config, ledger, watcher, dispatcher, writer and scheduler together.

Start order matters: recover the ledger (``running`` → ``ready``), start the writer
(which resumes ``generated`` jobs: no paid work is redone), arm the watcher, and only
then tell systemd READY=1 and start claiming work. Stop order is the reverse: stop
intake, drain in-flight generation until a deadline (unfinished jobs go back to
``ready``), flush the writer (its poison pill is queued after every pending write),
close the ledger.

One daemon per vault, however it was started: :class:`daemon.service.vault_lock.VaultLock`.

Supervised: every core thread is adopted or watched by a :class:`Supervisor`; when one
dies the run loop ends, ``daemon.json`` says why, the watchdog ping stops and the process
exits non-zero (see :mod:`daemon.service.supervisor`). ``daemon.json`` passes the scrubber.

Faults of the machine (see docs/faults.md): the ledger is checked and, when damaged,
rebuilt before anything starts (:mod:`daemon.jobs.ledger_repair`); the state folder is
watched from :meth:`Daemon.run` (:mod:`daemon.jobs.state_watch`: full disk = pause, vanished
folder = recreate + re-lock + rebuild, cannot = stop non-zero); periodic work runs on
the monotonic clock (:mod:`daemon.service.ticker`), so clock steps neither freeze nor burst it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from daemon.config import RESTART_SETTINGS, Config, changed_settings, load_config
from daemon.errors import ConfigError, VaultdError, VaultMissingError
from daemon.jobs import ledger_repair, spool
from daemon.jobs.dispatcher import Dispatcher
from daemon.jobs.ledger import Ledger
from daemon.jobs.state_watch import StateWatch, classify, full_reason, readonly_reason
from daemon.paths import VaultPaths, check_vault_paths
from daemon.secrets import load_api_key, register_config, scrub_data
from daemon.service import heap, sdnotify
from daemon.service.supervisor import Supervisor
from daemon.service.ticker import Ticker
from daemon.service.vault_lock import AlreadyRunning, VaultLock  # noqa: F401 - cli imports it here
from daemon.service.vault_watcher import VaultWatcher
from daemon.writer.feeds.subscriptions import Subscriptions
from daemon.writer.graph_keeper import GraphKeeper
from daemon.writer.pdf.render_pool import PdfRenderPool
from daemon.writer.topic_keeper import TopicKeeper
from daemon.writer.topic_synthesizer import synthesizer_for
from daemon.writer.vault_writer import VaultWriter
from daemon.writer.weekly_review import plan_review, review_path

log = logging.getLogger("vaultd")

STATUS_FILE = "daemon.json"
STATUS_SIZE = 4096


def api_key_available(config: Config) -> bool:
    """True when a usable key is configured. A key file readable by others raises
    ConfigError naming ``generate.api_key_file`` (the key's value is never shown)."""
    return load_api_key(config.section("generate")) is not None


def resolve_backend(config: Config) -> tuple[str, str]:
    """(backend name, why) from ``generate.backend`` and the environment."""
    choice = config.get("generate", "backend")
    if choice == "offline":
        return "offline", "generate.backend = offline"
    if choice == "claude":
        if not api_key_available(config):
            raise ConfigError("generate.backend", "is 'claude' but ANTHROPIC_API_KEY is not "
                              "set and generate.api_key_file names no file")
        return "claude", "generate.backend = claude"
    if choice == "openai":
        from daemon.secrets import load_openai_key

        load_openai_key(config.section("openai"))  # a bad key file names its setting
        return "openai", (f"generate.backend = openai: {config.get('openai', 'model')} at "
                          f"{config.get('openai', 'base_url')}")
    if api_key_available(config):
        source = "ANTHROPIC_API_KEY" if os.environ.get("ANTHROPIC_API_KEY") else \
            "generate.api_key_file"
        return "claude", f"{source} is set"
    return "offline", "no ANTHROPIC_API_KEY: using the offline extractive generator"


def open_vault(vault: Path) -> tuple[Config, VaultPaths]:
    if not vault.exists():
        raise VaultMissingError(f"vault folder not found: {vault}")
    if not vault.is_dir():
        raise VaultMissingError(f"vault is not a folder: {vault}")
    config = load_config(vault)
    return config, VaultPaths.from_config(vault, config)


@dataclass
class RunOptions:
    workers: int | None = None
    once: bool = False
    sequential: bool = False
    backend: str | None = None  # force a backend (demo uses "offline")
    drain_seconds: float = 60.0
    # run --once: how long a pause that only space can end (disk full) may last before
    # the run ends non-zero with the reason, instead of hanging.
    once_stall_seconds: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)


class Daemon:
    def __init__(self, vault: Path, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        self.config, self.paths = open_vault(vault)
        check_vault_paths(self.paths)  # the path gate's rule for configured locations
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.vault_gone = False
        self.gave_up: str | None = None  # why --once stopped before its work was done
        self.lock = VaultLock(self.paths)
        self.started_at = time.time()
        self.supervisor = Supervisor(self.paths.state, on_failure=self._on_thread_death)
        self._status_lock = threading.Lock()
        self._review_week: tuple[int, int] | None = None
        self.clock = time.monotonic  # every interval and deadline (injectable for tests)
        self.exit_reason: str | None = None  # set when the daemon must stop non-zero
        self.signals = 0
        self._first_signal = 0.0
        self._last_status_error = -1e9

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.lock.acquire()
        heap.configure()  # before the threads: see daemon.service.heap
        register_config(self.config)
        if self.options.backend:
            self.backend, why = self.options.backend, "chosen by the command"
        else:
            self.backend, why = resolve_backend(self.config)
        workers = self.options.workers or self.config.get("daemon", "workers")
        log.info("vault %s, state %s", self.paths.vault, self.paths.state)
        log.info("backend: %s (%s); %d worker(s)", self.backend, why, workers)
        self.ledger = self._open_ledger()
        recovered = self.ledger.recover()
        try:
            spool.restore(self.paths.state, self.ledger)
        except sqlite3.Error as exc:  # still full: the files stay for the next start
            log.error("spooled results not committed yet: %s", exc)
        if recovered:
            log.info("recovered %d job(s) interrupted by a stop or crash", recovered)
        self.dispatcher = Dispatcher(
            self.paths, self.ledger, self.config, backend=self.backend,
            on_generated=lambda key: self.writer.request_write(key),
            on_changed=lambda: self.writer.request_inbox(),
            workers=workers, sequential=self.options.sequential, once=self.options.once)
        self.writer = VaultWriter(self.paths, self.ledger, self.config)
        self.writer.pdf.no_wait = self.options.once
        self.writer.on_jobs_added = self.dispatcher.wake
        self.keeper = GraphKeeper(self.paths.vault, self.paths.state,
                                  sorted(self.writer.exclude),
                                  self.writer.request_graph_note)
        self.writer.keeper = self.keeper
        self.watch = StateWatch(self.paths.state, self.paths.vault, self.ledger,
                                relock=self.relock, on_recovered=self._after_state_fault,
                                clock=lambda: self.clock())
        self.watch.hold_open()
        self.dispatcher.watch = self.watch
        self.writer.watch = self.watch
        self.writer.sync.pause = lambda: self.watch.paused
        self.topic_keeper: TopicKeeper | None = None
        self._apply_topics(None)
        self.keeper.extra_lines = self.study_plan_lines
        self.pdfs = PdfRenderPool(self.paths.vault, self.config.get("vault", "pdf_folder"),
                                self.config.get("pdf", "theme"), self.writer.request_pdf_done)
        self.writer.pdfs = self.pdfs
        self.subscriptions = Subscriptions(self.paths, self.config)
        self.writer.subscriptions = self.subscriptions
        self.dispatcher.is_known = self.writer.is_known_video
        self.dispatcher.on_known = self.writer.request_link_existing
        self.writer.sync.progress = self.dispatcher.progress_of
        sup = self.supervisor
        sup.adopt(self.keeper)
        sup.adopt(self.writer)
        sup.adopt(self.dispatcher)
        self.keeper.start()
        self.writer.start()
        self.writer.request_tick()  # resume generated-but-unwritten jobs
        self.writer.request_inbox()
        d = self.config.section("daemon")
        self.watcher = VaultWatcher(self.paths.vault, self.paths.inbox,
                                    self.writer.request_inbox,
                                    debounce=d["debounce_seconds"], polling=d["polling"],
                                    on_note=self.writer.note_event)
        self.watcher.start()
        sup.watch("watcher", self.watcher.healthy, self.watcher.threads)
        self.scheduler = Ticker(clock=lambda: self.clock())
        self.scheduler.add_job(self.writer.request_inbox, d["rescan_seconds"],
                               id="rescan-inbox")
        self.scheduler.add_job(self.writer.request_tick, 10, id="resume-writes")
        self.scheduler.add_job(self.dispatcher.wake, 5, id="retry-due")
        self.scheduler.add_job(self.write_status, 2, id="status-file")
        self.scheduler.add_job(self.check_vault, 2, id="vault-check")
        self.scheduler.add_job(self.keeper.rebuild, 24 * 3600, id="graph-rebuild")
        self._schedule_review(None)
        self.scheduler.add_job(heap.trim, heap.TRIM_EVERY, id="heap-trim")
        self._schedule_subscriptions()
        self.scheduler.start()
        sup.watch("scheduler", self.scheduler.is_alive, lambda: [self.scheduler])
        self.dispatcher.start()
        self.write_status()
        sdnotify.ready()
        sdnotify.status(f"watching {self.paths.inbox.name} with {self.backend} backend")

    def _apply_topics(self, old: Config | None) -> None:
        """[topics] at start and on reload. The topic keeper thread is made the first
        time topics are enabled; disabling them detaches it from the graph keeper (a
        supervised thread may not end while the daemon runs), so it idles. A new folder
        receives topic notes made from then on; existing ones stay where they are."""
        topics = self.config.section("topics")
        self.writer.maintained.topics_folder = topics["folder"]
        if not topics["enabled"]:
            self.keeper.on_clusters = None
            return
        changed = [] if old is None else changed_settings(old, self.config)
        if self.topic_keeper is None or any(
                n.startswith(("topics.", "generate.", "openai.")) for n in changed):
            synth = synthesizer_for(self.config, self.backend, self.paths.state,
                                    self.writer.maintained.tokens_today)
        else:
            synth = self.topic_keeper.synth
        if self.topic_keeper is None:
            self.topic_keeper = TopicKeeper(self.paths.vault, self.writer.maintained,
                                            self.writer.request_topics,
                                            debounce=topics["debounce_seconds"], synth=synth)
            self.supervisor.adopt(self.topic_keeper)
            self.topic_keeper.start()
        else:
            self.topic_keeper.debounce = topics["debounce_seconds"]
            self.topic_keeper.synth = synth
        was_on = old is not None and old.get("topics", "enabled")
        self.keeper.on_clusters = self.topic_keeper.submit
        if old is not None and not was_on:
            self.keeper.render_now()  # hands the current clusters to the topic keeper

    def _schedule_review(self, old: Config | None) -> None:
        """[review] at start and on reload: at start (or when it is switched on or its
        folder changes), then at the first look (every 10 minutes) in each new ISO
        week: the note of the week exists from then on and follows the calendar."""
        review = self.config.section("review")
        if not review["enabled"]:
            self.scheduler.remove_job("weekly-review")
            return
        if old is None or old.section("review") != review:
            self._review_week = None  # write this week's note now (in the new folder)
            self.scheduler.add_job(self.review_tick, 600, id="weekly-review", first_in=0)
            if old is not None:
                self.keeper.render_now()  # the graph note links this week's review

    def _apply_daemon(self, old: Config) -> None:
        """[daemon] on reload: the rescan interval, the watcher's debounce and polling
        (the watcher is re-armed when polling changed); ``workers`` needs a restart."""
        d, before = self.config.section("daemon"), old.section("daemon")
        if d["rescan_seconds"] != before["rescan_seconds"]:
            self.scheduler.add_job(self.writer.request_inbox, d["rescan_seconds"],
                                   id="rescan-inbox")
        self.watcher.debounce = d["debounce_seconds"]
        self.watcher.max_wait = max(2.0, 4 * d["debounce_seconds"])
        if d["polling"] != before["polling"]:
            self.watcher.stop()
            self.watcher.polling = d["polling"]
            self.watcher.start()
            self.writer.request_inbox()  # an edit made while it was re-armed

    def _schedule_subscriptions(self) -> None:
        sub = self.config.section("subscriptions")
        if not (sub["channels"] or sub["playlists"] or sub["podcasts"]):
            if self.scheduler.get_job("poll-subscriptions"):
                self.scheduler.remove_job("poll-subscriptions")
            return
        # Fetching paces itself (seconds per feed): it runs on the scheduler's thread;
        # the inbox edit happens on the writer.
        self.scheduler.add_job(lambda: self.writer.request_follow(self.subscriptions.fetch_all()),
                               sub["poll_minutes"] * 60, id="poll-subscriptions", first_in=0)

    def review_tick(self) -> None:
        """The weekly review job: write the note when the ISO week is one it has not been
        written for by this daemon (at start, and once a new week begins)."""
        week = date.today().isocalendar()[:2]
        if week != self._review_week:
            self._review_week = week
            self.write_review()

    def write_review(self) -> None:
        """Plan this ISO week's review note (reads the vault, off the writer) and hand
        it to the writer. Runs on the scheduler's thread."""
        try:
            rel, text = plan_review(self.paths.vault, self.writer.maintained,
                                    self.config.get("review", "folder"), date.today())
        except Exception:  # noqa: BLE001 - next week's run tries again
            log.exception("planning the weekly review failed")
            return
        self.writer.request_review(rel, text)

    def study_plan_lines(self) -> list[str]:
        """The graph note's links to this week's review and the topic notes."""
        lines = []
        if self.config.get("review", "enabled"):
            rel = review_path(self.config.get("review", "folder"), date.today())
            lines.append(f"- This week's review: [[{rel[:-3]}]]")
        for path, name, _members in sorted(self.writer.maintained.live_topics())[:20]:
            label = name.translate(str.maketrans("[]|#^", "()/  "))
            lines.append(f"- Topic: [[{path[:-3]}|{label}]]")
        return lines

    def check_vault(self) -> None:
        """The vault folder can vanish (unmounted drive, sync client): pause while it is
        gone; when it is back, re-arm the watcher (its OS watch died with the folder)
        and rescan the inbox."""
        present = self.paths.vault.is_dir()
        if not present and not self.vault_gone:
            self.vault_gone = True
            log.warning("vault folder %s disappeared; pausing until it is back",
                        self.paths.vault)
        elif present and self.vault_gone:
            self.vault_gone = False
            log.warning("vault folder %s is back; resuming", self.paths.vault)
            self.watcher.stop()
            self.watcher.start()
            self.writer.request_rescan()  # files restored before the watcher was armed
            self.writer.request_tick()
            self.writer.request_inbox()
            self.dispatcher.wake()

    def _open_ledger(self) -> Ledger:
        """Open (or repair) the ledger. A full or read-only state disk at start is a
        pause for the service, not a death: it says why (the log, once; sd_notify STATUS
        and READY, so systemd neither kills the start nor restarts in a loop), keeps the
        watchdog fed, and tries again with a growing wait until the ledger opens or a
        stop is asked. ``run --once`` cannot wait for space: it stops with the reason."""
        delay, said = 2.0, False
        while True:
            try:
                return ledger_repair.open_ledger(self.paths.ledger, self.paths.vault)
            except (sqlite3.OperationalError, OSError) as exc:  # OSError: a 0400 ledger
                kind = classify(exc)
                if kind not in ("full", "readonly", "gone"):
                    raise
                why = full_reason(self.paths.state) if kind == "full" else \
                    readonly_reason(self.paths.ledger) if kind == "readonly" else str(exc)
                message = why if kind == "readonly" else \
                    f"cannot open the ledger {self.paths.ledger}: {why}"
                if self.options.once or self.stop_event.is_set():
                    self.lock.release()
                    raise VaultdError(f"{message}; free some space (or make the folder "
                                      "writable) and start again") from None
            if not said:
                said = True
                log.error("%s; waiting: vaultd goes on by itself once %s", message,
                          "it can write there" if kind == "readonly" else "there is room")
                sdnotify.ready(f"waiting: {why}")
                self._status_waiting(f"waiting: {why}")
            sdnotify.watchdog_ping()
            self.stop_event.wait(delay)
            delay = min(delay * 2, 30.0)

    def relock(self) -> None:
        """Take the single-daemon lock again (its file vanished with the state folder).
        Whatever lock object the daemon holds: release, then acquire."""
        self.lock.release()
        self.lock.acquire()

    def _after_state_fault(self) -> None:
        """The state folder is usable again (space back, ledger rebuilt, folder
        recreated): jobs no thread holds go back to the queue, everyone wakes up."""
        busy = [k for k, _ in self.dispatcher.working_on()] + self.dispatcher.unsaved()
        self.ledger.recover(exclude=busy)
        self.writer.request_tick()
        self.writer.request_inbox()
        self.dispatcher.wake()
        self.write_status()

    def on_signal(self, signum: int) -> None:
        """SIGTERM/SIGINT: stop cleanly. A repeat within 2 s is the same request
        (systemd and shells may send two); a later one means "now": the pool's
        processes are killed and the process exits non-zero."""
        self.signals += 1
        now = time.monotonic()
        if self.signals == 1:
            self._first_signal = now
        elif now - self._first_signal > 2.0:
            if getattr(self, "dispatcher", None) is not None:  # not while start waits
                self.dispatcher.kill_pool()
            os._exit(1)  # ledger and files are safe: every write is atomic
        self.stop_event.set()

    def write_status(self) -> None:
        """Heartbeat file read by ``vaultd status`` (another process).

        Serialised: the heartbeat job and a thread's death both write it, and a heartbeat
        that read ``failure`` just before the death must not replace the death's file."""
        with self._status_lock:
            self._write_status()

    def _status_waiting(self, why: str) -> None:
        """The heartbeat while the ledger cannot be opened at start (nothing else runs
        yet), so ``status`` says why the daemon waits."""
        data = {"pid": os.getpid(), "started_at": self.started_at, "heartbeat": time.time(),
                "vault": str(self.paths.vault), "backend": self.backend, "workers": 0,
                "working_on": [], "paused": why, "watcher": "not started", "notices": []}
        path = self.paths.state / STATUS_FILE
        try:
            path.write_text(json.dumps(scrub_data(data)).ljust(STATUS_SIZE), encoding="utf-8")
        except OSError as exc:
            log.warning("cannot write the status file %s: %s", path, exc)

    def _write_status(self) -> None:
        data = {
            "pid": os.getpid(), "started_at": self.started_at, "heartbeat": time.time(),
            "vault": str(self.paths.vault), "backend": self.backend,
            "workers": self.dispatcher.workers,
            "working_on": [{"key": k, "seconds": round(s, 1)}
                           for k, s in self.dispatcher.working_on()],
            "paused": self.watch.paused or self.dispatcher.paused_reason
            or ("vault folder missing" if self.vault_gone or self.writer.vault_missing
                else None),
            "state_note": self.watch.note,
            "unsaved": self.dispatcher.unsaved(),
            "watcher": "polling" if self.watcher.polling else "os events",
            "notices": self.writer.notices.recent(),  # foreign files kept, paths refused
            "failure": self.supervisor.failure,
        }
        path = self.paths.state / STATUS_FILE
        # Padded to a fixed size: on a full disk the file is overwritten in place
        # (no new block needed), so status still sees the heartbeat and the reason.
        text = json.dumps(scrub_data(data)).ljust(STATUS_SIZE)
        tmp = path.with_suffix(".tmp")
        try:
            try:
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)
                with open(path, "r+", encoding="utf-8") as fh:
                    if len(text) > os.fstat(fh.fileno()).st_size:
                        raise
                    fh.write(text)
                raise
        except OSError as exc:
            # Full or read-only state folder: one line a minute, not a traceback each
            # 2 s; the watch pauses the work. The watchdog ping still goes out.
            self.watch.report(exc)
            if self.clock() - self._last_status_error >= 60:
                self._last_status_error = self.clock()
                log.error("cannot write the status file %s: %s", path, exc)
        if self.supervisor.failure is None:  # a daemon with a dead thread is not well
            sdnotify.watchdog_ping()

    def _on_thread_death(self, reason: str) -> None:
        """A core thread died: say so where people and systemd look; the run loop ends."""
        sdnotify.status(f"failed: {reason}")
        try:
            self.write_status()
        except Exception:  # noqa: BLE001 - e.g. the dispatcher is half set up
            log.debug("could not write the status file", exc_info=True)
        self.stop_event.set()

    def finished(self) -> bool:
        """--once: inbox read, nothing left to do (every job done or failed)."""
        if self.writer.inbox_scans < 1 or not self.writer.idle.is_set():
            return False
        if self.writer.sync.unsettled:  # a recording still being copied in: wait for it
            return False
        if self.watch.paused or self.dispatcher.unsaved():
            return False
        try:
            counts = self.ledger.counts()
        except Exception as exc:  # noqa: BLE001 - a ledger fault is reported, not raised
            if not self.watch.report(exc):
                raise
            return False
        active = counts["ready"] + counts["running"] + counts["generated"] + counts["written"]
        return active == 0 and not self.dispatcher.working_on() and not self.writer.pdf.busy()

    def _stalled(self) -> str | None:
        """--once: why the run cannot finish now (a full disk only space can end)."""
        if self.watch.paused:
            return self.watch.paused.removeprefix("waiting: ")
        try:
            jobs = self.ledger.in_state("ready", "generated", "written", "running")
        except Exception as exc:  # noqa: BLE001 - a ledger fault is reported, not raised
            if not self.watch.report(exc):
                raise
            return None
        blocked = [j for j in jobs if j.waiting and j.state in ("generated", "written")
                   and (j.last_error or "").startswith("disk full")]
        if jobs and len(blocked) == len(jobs) and not self.dispatcher.working_on():
            return f"{blocked[0].last_error}; {len(blocked)} source(s) wait for space"
        return None

    def run(self) -> None:
        """Block until stopped (signal) or, with --once, until the work is done."""
        next_check = 0.0
        stalled_since: float | None = None
        while not self.stop_event.is_set():
            if self.supervisor.check():
                break
            if self.clock() >= next_check:
                next_check = self.clock() + 2.0
                self.watch.check()
                if self.watch.fatal:
                    self.exit_reason = self.watch.fatal
                    break
                if self.options.once and self.writer.sync.unsettled:
                    self.writer.request_inbox()  # picked up once it has settled
                if self.options.once:
                    stall = self._stalled()
                    if stall is None:
                        stalled_since = None
                    elif stalled_since is None:
                        stalled_since = self.clock()
                    elif self.clock() - stalled_since >= self.options.once_stall_seconds:
                        self.exit_reason = (f"cannot finish: {stall}; the work is kept, "
                                            "run again when space is freed")
                        log.error("%s", self.exit_reason)
                        break
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            if self.options.once and (self.vault_gone or self.writer.vault_missing):
                # A service waits for the folder to come back; --once must end.
                self.gave_up = (f"vault folder {self.paths.vault} disappeared; run --once "
                                "stops (unfinished jobs wait in the ledger for the next run)")
                log.error("%s", self.gave_up)
                break
            if self.options.once and self.finished():
                # One more pass: the last status reaches the inbox before we exit.
                self.writer.request_inbox()
                self.writer.idle.clear()
                self.writer.idle.wait(timeout=10)
                if self.finished():
                    if self.writer.inbox_unread:  # nothing was done: not a success
                        self.gave_up = (f"{self.writer.inbox_unread}; run --once could not "
                                        "read the inbox (nothing in it was done)")
                        log.error("%s", self.gave_up)
                    break
            self.stop_event.wait(0.2)

    def reload(self) -> None:
        """SIGHUP: re-read the config; a bad file is reported and the old one kept."""
        sdnotify.reloading()
        try:
            config = load_config(self.paths.vault, create=False)
            check_vault_paths(VaultPaths.from_config(self.paths.vault, config))
            self.paths.gate.allow_symlinks_out = config.get("vault", "allow_symlinks_out")
        except ConfigError as exc:
            log.error("config not reloaded, keeping the running one: %s", exc)
        else:
            old, self.config = self.config, config
            register_config(config)
            self.dispatcher.config = config
            self.writer.config = config
            self.writer.request_pdf_audit()  # a new theme redoes the PDFs
            self.subscriptions.config = config
            self._schedule_subscriptions()
            self._apply_topics(old)
            self._schedule_review(old)
            self._apply_daemon(old)
            logging.getLogger().setLevel(config.get("daemon", "log_level"))
            later = [n for n in changed_settings(old, config) if n in RESTART_SETTINGS]
            if later:
                log.warning("config reloaded from %s; %s changed but take(s) effect only "
                            "at the next start (restart vaultd)", config.path,
                            ", ".join(later))
            else:
                log.info("config reloaded from %s (every setting applied)", config.path)
        sdnotify.ready()

    def stop(self) -> None:
        sdnotify.stopping()
        self.supervisor.stopping()
        log.info("stopping: finishing in-flight work (up to %.0f s)", self.options.drain_seconds)
        self.watcher.stop()
        self.scheduler.shutdown(wait=False)
        self.dispatcher.drain(time.monotonic() + self.options.drain_seconds)
        self.dispatcher.spool_unsaved()
        # Let the writer finish pending writes, then the keeper render the final graph
        # note (which it hands to the writer), then stop the writer after that.
        self.writer.request_tick()
        if self.writer.is_alive():  # a dead writer answers no barrier
            self.writer.wait_idle(timeout=30)
        self.keeper.stop()
        self.keeper.join(timeout=60)
        if self.topic_keeper is not None:  # flushes a pending refresh to the writer
            self.topic_keeper.stop()
            self.topic_keeper.join(timeout=60)
        if self.options.once and self.config.get("review", "enabled"):
            self.writer.wait_idle(timeout=30)  # the topic notes are written first
            self.write_review()
        self.pdfs.shutdown(timeout=15.0)
        self.writer.request_inbox()
        self.writer.stop()
        self.writer.join(timeout=30)
        self.ledger.close()
        self.watch.close()
        try:
            (self.paths.state / STATUS_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        if self.supervisor.failure is None:  # else last-failure.json tells status why
            self.supervisor.clear_record()
        self.lock.release()
        log.info("stopped")


def read_status_file(paths: VaultPaths) -> dict[str, Any] | None:
    """The running daemon's heartbeat, or None when no daemon is running."""
    path = paths.state / STATUS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(data["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return data
