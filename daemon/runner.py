"""The daemon: wires config, ledger, watcher, dispatcher, writer and scheduler together.

Start order matters: recover the ledger (``running`` → ``ready``), start the writer
(which resumes ``generated`` jobs: no paid work is redone), arm the watcher, and only
then tell systemd READY=1 and start claiming work. Stop order is the reverse: stop
intake, drain in-flight generation until a deadline (unfinished jobs go back to
``ready``), flush the writer (its poison pill is queued after every pending write),
close the ledger.

One daemon per vault, however it was started: :class:`daemon.vaultlock.VaultLock`.

Supervised: every core thread is adopted or watched by a :class:`Supervisor`; when one
dies the run loop ends, ``daemon.json`` says why, the watchdog ping stops and the process
exits non-zero (see :mod:`daemon.supervisor`). ``daemon.json`` passes the scrubber.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from daemon import sdnotify
from daemon.config import Config, load_config
from daemon.errors import ConfigError, VaultMissingError
from daemon.follow import Subscriptions
from daemon.graphkeeper import GraphKeeper
from daemon.ledger import Ledger
from daemon.paths import VaultPaths, check_vault_paths
from daemon.pdfs import PdfExporter
from daemon.pipeline import Dispatcher
from daemon.secrets import load_api_key, register_config, scrub_data
from daemon.supervisor import Supervisor
from daemon.vaultlock import AlreadyRunning, VaultLock  # noqa: F401 - cli imports it here
from daemon.watcher import VaultWatcher
from daemon.writer import VaultWriter

log = logging.getLogger("vaultd")

STATUS_FILE = "daemon.json"


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
    extra: dict[str, Any] = field(default_factory=dict)


class Daemon:
    def __init__(self, vault: Path, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        self.config, self.paths = open_vault(vault)
        check_vault_paths(self.paths)  # the path gate's rule for configured locations
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.vault_gone = False
        self.lock = VaultLock(self.paths)
        self.started_at = time.time()
        self.supervisor = Supervisor(self.paths.state, on_failure=self._on_thread_death)
        self._status_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.lock.acquire()
        register_config(self.config)
        if self.options.backend:
            self.backend, why = self.options.backend, "chosen by the command"
        else:
            self.backend, why = resolve_backend(self.config)
        workers = self.options.workers or self.config.get("daemon", "workers")
        log.info("vault %s, state %s", self.paths.vault, self.paths.state)
        log.info("backend: %s (%s); %d worker(s)", self.backend, why, workers)
        self.ledger = Ledger(self.paths.ledger)
        recovered = self.ledger.recover()
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
        self.pdfs = PdfExporter(self.paths.vault, self.config.get("vault", "pdf_folder"),
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
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True,
                                                           "max_instances": 1})
        self.scheduler.add_job(self.writer.request_inbox, "interval",
                               seconds=d["rescan_seconds"], id="rescan-inbox",
                               replace_existing=True)
        self.scheduler.add_job(self.writer.request_tick, "interval", seconds=10,
                               id="resume-writes", replace_existing=True)
        self.scheduler.add_job(self.dispatcher.wake, "interval", seconds=5,
                               id="retry-due", replace_existing=True)
        self.scheduler.add_job(self.write_status, "interval", seconds=2,
                               id="status-file", replace_existing=True)
        self.scheduler.add_job(self.check_vault, "interval", seconds=2, id="vault-check",
                               replace_existing=True)
        self.scheduler.add_job(self.keeper.rebuild, "interval", hours=24,
                               id="graph-rebuild", replace_existing=True)
        self._schedule_subscriptions()
        self.scheduler.start()
        loop = self.scheduler._thread  # type: ignore[attr-defined]  # APScheduler's loop
        sup.watch("scheduler", loop.is_alive, lambda: [loop])
        self.dispatcher.start()
        self.write_status()
        sdnotify.ready()
        sdnotify.status(f"watching {self.paths.inbox.name} with {self.backend} backend")

    def _schedule_subscriptions(self) -> None:
        sub = self.config.section("subscriptions")
        if not (sub["channels"] or sub["playlists"] or sub["podcasts"]):
            if self.scheduler.get_job("poll-subscriptions"):
                self.scheduler.remove_job("poll-subscriptions")
            return
        # Fetching paces itself (seconds per feed): it runs on the scheduler's thread;
        # the inbox edit happens on the writer.
        self.scheduler.add_job(lambda: self.writer.request_follow(self.subscriptions.fetch_all()),
                               "interval", minutes=sub["poll_minutes"], id="poll-subscriptions",
                               replace_existing=True, next_run_time=datetime.now())

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
            self.writer.request_tick()
            self.writer.request_inbox()
            self.dispatcher.wake()

    def write_status(self) -> None:
        """Heartbeat file read by ``vaultd status`` (another process).

        Serialised: the heartbeat job and a thread's death both write it, and a heartbeat
        that read ``failure`` just before the death must not replace the death's file."""
        with self._status_lock:
            self._write_status()

    def _write_status(self) -> None:
        data = {
            "pid": os.getpid(), "started_at": self.started_at, "heartbeat": time.time(),
            "vault": str(self.paths.vault), "backend": self.backend,
            "workers": self.dispatcher.workers,
            "working_on": [{"key": k, "seconds": round(s, 1)}
                           for k, s in self.dispatcher.working_on()],
            "paused": self.dispatcher.paused_reason
            or ("vault folder missing" if self.vault_gone or self.writer.vault_missing
                else None),
            "watcher": "polling" if self.watcher.polling else "os events",
            "notices": self.writer.notices.recent(),  # foreign files kept, paths refused
            "failure": self.supervisor.failure,
        }
        path = self.paths.state / STATUS_FILE
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")  # heartbeat job or a death
        tmp.write_text(json.dumps(scrub_data(data)), encoding="utf-8")
        os.replace(tmp, path)
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
        counts = self.ledger.counts()
        active = counts["ready"] + counts["running"] + counts["generated"] + counts["written"]
        return active == 0 and not self.dispatcher.working_on() and not self.writer.pdf.busy()

    def run(self) -> None:
        """Block until stopped (signal) or, with --once, until the work is done."""
        while not self.stop_event.is_set():
            if self.supervisor.check():
                break
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            if self.options.once and self.finished():
                # One more pass: the last status reaches the inbox before we exit.
                self.writer.request_inbox()
                self.writer.idle.clear()
                self.writer.idle.wait(timeout=10)
                if self.finished():
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
            self.config = config
            register_config(config)
            self.dispatcher.config = config
            self.writer.config = config
            self.writer.request_pdf_audit()  # a new theme redoes the PDFs
            self.subscriptions.config = config
            self._schedule_subscriptions()
            logging.getLogger().setLevel(config.get("daemon", "log_level"))
            log.info("config reloaded from %s", config.path)
        sdnotify.ready()

    def stop(self) -> None:
        sdnotify.stopping()
        self.supervisor.stopping()
        log.info("stopping: finishing in-flight work (up to %.0f s)", self.options.drain_seconds)
        self.watcher.stop()
        self.scheduler.shutdown(wait=False)
        self.dispatcher.drain(time.monotonic() + self.options.drain_seconds)
        # Let the writer finish pending writes, then the keeper render the final graph
        # note (which it hands to the writer), then stop the writer after that.
        self.writer.request_tick()
        if self.writer.is_alive():  # a dead writer answers no barrier
            self.writer.wait_idle(timeout=30)
        self.keeper.stop()
        self.keeper.join(timeout=60)
        self.pdfs.shutdown(timeout=15.0)
        self.writer.request_inbox()
        self.writer.stop()
        self.writer.join(timeout=30)
        self.ledger.close()
        (self.paths.state / STATUS_FILE).unlink(missing_ok=True)
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
