"""The dispatcher: claims ready jobs from the ledger and runs them in a process pool.

In-flight work is bounded (``workers`` jobs at a time): the ledger is the queue, so a
burst of 1,000 pasted links costs 1,000 rows, not 1,000 pickled futures — that is the
backpressure. Results are committed to the ledger (``generated``) from the future's
callback *before* the writer is asked to write, so a crash after generation never
pays again. Failures are decided by exception type (:mod:`daemon.errors`).

A full disk, a damaged ledger or a vanished state folder under a finished result does
not lose it: the result is kept in memory (``_unsaved``) and committed again on every
loop until it goes in; meanwhile nothing new is claimed and the fault is handed to the
:class:`~daemon.jobs.state_watch.StateWatch`, which pauses, repairs or recreates. A finished
generation is never paid for twice.

A worker that dies (OOM, segfault) breaks the whole pool; the dispatcher rebuilds it
and the affected jobs are retried as transient failures, never lost.

``sequential=True`` runs jobs in the dispatcher thread itself (tests, debugging).

A source that must be heard first (an audio/video file, a caption-less video) raises
:class:`NeedsTranscriptionError` in its worker, or is seen to lack a cached transcript
at claim time; it then goes to the separate transcription pool
(:mod:`daemon.jobs.transcription_pool`) and comes back to a generation slot once its transcript
is cached. While it is heard, :meth:`Dispatcher.progress_of` says how far it got.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import TYPE_CHECKING

from daemon.config import Config
from daemon.errors import (
    ConfigError,
    JobError,
    NeedsTranscriptionError,
    NetworkError,
    OfflineError,
    PathRefusedError,
    PermanentError,
    SourceNotFoundError,
)
from daemon.generate.base import GenerationContext, JobSpec
from daemon.generate.worker import run_job, run_playlist, split_result
from daemon.jobs import orphans
from daemon.jobs.ledger import MAX_WAIT, Job, Ledger, gave_up
from daemon.jobs.transcription_pool import (
    TranscribeTask,
    TranscriptionPool,
    progress_text,
)
from daemon.jobs.warm_start import pool_kwargs, start_early, terminate_pool, warm
from daemon.logs import setup_logging
from daemon.paths import VaultPaths
from daemon.sources import media
from daemon.sources.base import transcribable
from daemon.sources.transcribe import EngineSettings, cache_key, speech_dir, unavailable_reason
from vault_tools.models import Usage, VideoContent
from vault_tools.pathgate import PathGate, PathRefused

if TYPE_CHECKING:
    from daemon.jobs.state_watch import StateWatch

log = logging.getLogger("vaultd.dispatcher")

MAX_FILE_BYTES = 20 * 1024 * 1024
# run --once without a network: at most this many tries, at most this many seconds
# apart (about 10 s of waiting in all, instead of the daemon's growing backoff)
ONCE_OFFLINE_ATTEMPTS = 3
ONCE_OFFLINE_BACKOFF = 5.0


def read_subtitle_file(gate: PathGate, rel: str) -> str:
    """Read a subtitle file for a worker through the path gate (at the moment of use, so
    a refused line put back by ``vaultd retry`` is refused again); missing, unreadable,
    outside the vault, not a regular file (FIFO, device) or over the limit is a
    permanent error. At most ``MAX_FILE_BYTES`` are read whatever ``st_size`` says."""
    try:
        raw = gate.read_bytes(rel, MAX_FILE_BYTES)
    except PathRefused as exc:
        raise PathRefusedError.from_gate(exc) from None
    except FileNotFoundError:
        raise SourceNotFoundError(f"subtitle file not found in the vault: {rel}") from None
    except OSError as exc:
        raise SourceNotFoundError(f"cannot read {rel}: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    if b"\x00" in raw[:4096]:
        raise PermanentError(f"{rel} is not a text subtitle file (binary content)")
    return raw.decode("utf-8-sig", errors="replace")


class Dispatcher(threading.Thread):
    def __init__(self, paths: VaultPaths, ledger: Ledger, config: Config, *, backend: str,
                 on_generated: Callable[[str], None], on_changed: Callable[[], None],
                 workers: int, sequential: bool = False, once: bool = False) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.paths = paths
        self.ledger = ledger
        self.config = config
        self.backend = backend
        self.on_generated = on_generated
        self.on_changed = on_changed
        self.workers = workers
        self.sequential = sequential
        self.once = once  # run --once: waiting for the network must end (attempts count)
        self.owner = f"{os.getpid()}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.inflight: dict[Future[str], tuple[Job, float]] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._pool_broken = False
        self.paused_reason: str | None = None
        self.watch: StateWatch | None = None  # set by the runner
        # Results that could not be committed yet (key -> retry); see the docstring.
        self._unsaved: dict[str, Callable[[], None]] = {}
        self._unsaved_results: dict[str, tuple[Job, str]] = {}  # for the spool at stop
        # Set by the runner: a video that already has a note in the vault is linked,
        # not regenerated (``is_known`` is a cheap read of the writer's index).
        self.is_known: Callable[[str], bool] = lambda _vid: False
        self.on_known: Callable[[str], None] = lambda _key: None
        t = config.section("transcribe")
        self.transcriber = TranscriptionPool(t["workers"], config.get("daemon", "log_level"),
                                             sequential=sequential)
        # key -> (job, start time, speech cache key): being heard, holding no generation slot
        self.transcribing: dict[str, tuple[Job, float, str]] = {}
        self._heard: deque[Job] = deque()  # transcribed, waiting for a generation slot
        self._progress_shown: dict[str, str | None] = {}
        if not sequential:  # the fork server imports while the daemon starts up
            start_early(backend)

    # -- control -----------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _new_pool(self) -> ProcessPoolExecutor:
        # Workers are forks of a preloaded fork server (daemon.jobs.warm_start); they log to
        # the same stderr (journald) in the same format as the daemon, and die with the
        # daemon (daemon.jobs.orphans), never outliving a kill -9.
        init, initargs = orphans.initializer(setup_logging,
                                             self.config.get("daemon", "log_level"))
        pool = ProcessPoolExecutor(max_workers=self.workers, **pool_kwargs(init, initargs))
        # One worker up before the first claim; more start as jobs are submitted.
        pool.submit(warm, self.backend)
        return pool

    def working_on(self) -> list[tuple[str, float]]:
        """(key, seconds in flight) of jobs being generated now."""
        now = time.monotonic()
        with self._lock:
            return ([(job.key, now - t) for job, t in self.inflight.values()]
                    + [(job.key, now - t) for job, t, _ in self.transcribing.values()])

    def progress_of(self, key: str) -> str | None:
        """``transcribing 12:30 of 58:00`` while ``key`` is being heard, else None."""
        with self._lock:
            entry = self.transcribing.get(key)
        if entry is None:
            return None
        return progress_text(self.paths.state, entry[2])

    # -- loop --------------------------------------------------------------------------
    def run(self) -> None:
        if not self.sequential:
            self._pool = self._new_pool()
        while not self._stopping.is_set():
            self._wake.clear()
            if self._pool_broken:
                self._rebuild_pool()
            try:
                if self._save_unsaved():
                    self._fill()
                self._report_progress()
                timeout = self._idle_timeout()
                if self.transcribing:  # progress lines move: look again soon
                    timeout = min(timeout, 2.0)
            except Exception as exc:
                if not self._state_fault(exc):
                    raise
                timeout = 1.0
            self._wake.wait(timeout=timeout)

    def _report_progress(self) -> None:
        """Re-render the inbox when a transcription's progress text changed."""
        with self._lock:
            keys = list(self.transcribing)
        shown = {k: self.progress_of(k) for k in keys}
        if shown != self._progress_shown:
            self._progress_shown = shown
            self.on_changed()

    def _state_fault(self, exc: BaseException) -> bool:
        """A ledger/state-folder fault: handed to the watch, the thread lives on."""
        return self.watch is not None and self.watch.report(exc)

    def _keep(self, key: str, commit: Callable[[], None]) -> None:
        """Commit a result now, or keep it to commit later (state folder fault)."""
        try:
            commit()
        except Exception as exc:
            if not self._state_fault(exc):
                raise
            with self._lock:
                self._unsaved[key] = commit
            log.warning("result of %s kept in memory until the ledger can be written: %s",
                        key, exc, extra={"job": key})

    def _save_unsaved(self) -> bool:
        """Retry kept results; True when none is left (claiming may go on)."""
        with self._lock:
            pending = list(self._unsaved.items())
        for key, commit in pending:
            try:
                commit()
            except Exception as exc:
                if self._state_fault(exc):
                    raise  # still faulty: run() waits and comes back
                log.exception("result of %s could not be committed", key)
            with self._lock:
                self._unsaved.pop(key, None)
                self._unsaved_results.pop(key, None)
            log.info("result of %s committed after the fault", key, extra={"job": key})
        return True

    def spool_unsaved(self) -> None:
        """At stop: results still not in the ledger go to the spool (see
        :mod:`daemon.jobs.spool`), to be committed by the next start."""
        from daemon.jobs import spool

        with self._lock:
            left = [self._unsaved_results[k] for k in self._unsaved
                    if k in self._unsaved_results]
        for job, raw in left:
            raw, _requests = split_result(raw)  # the spool keeps the content alone
            where = spool.save(self.paths.state, job.key, job.kind, job.url, raw)
            if where is not None:
                log.warning("result of %s spooled to %s; the next start commits it",
                            job.key, where, extra={"job": job.key})

    def unsaved(self) -> list[str]:
        with self._lock:
            return list(self._unsaved)

    def _idle_timeout(self) -> float:
        due = self.ledger.next_due_at(self._horizon())
        if due is None:
            return 5.0
        return min(5.0, max(0.05, due - time.time()))

    def _horizon(self) -> float:
        """No retry wait is longer: beyond it, the wall clock was stepped back."""
        return max(MAX_WAIT, 2.0 * float(self.config.get("daemon", "backoff_max_seconds")))

    def _budget_exhausted(self) -> bool:
        budget = self.config.get("generate", "daily_token_budget")
        if not budget or self.backend == "offline":
            self.paused_reason = None
            return False
        used = self.ledger.usage_on()["tokens"]
        if used >= budget:
            if not self.paused_reason:
                log.warning("daily token budget reached (%s of %s); jobs wait until "
                            "tomorrow (UTC)", used, budget)
            self.paused_reason = f"daily token budget reached ({used} of {budget} tokens)"
            return True
        self.paused_reason = None
        return False

    def _fill(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if len(self.inflight) >= self.workers:
                    return
            if self._budget_exhausted():
                return
            if not self.paths.vault.is_dir():  # unmounted or syncing: wait, fail nothing
                return
            if self.watch is not None and (self.watch.paused or self.watch.fatal):
                return  # state folder full or read-only: nothing new until it is back
            with self._lock:
                job = self._heard.popleft() if self._heard else None
                busy = [j.key for j, _ in self.inflight.values()] + list(self._unsaved)
            if job is None:
                job = self.ledger.claim_next(self.owner, exclude=busy, horizon=self._horizon())
                if job is None:
                    return
                self.on_changed()
                if job.kind == "youtube" and not job.force and \
                        self.is_known(job.key.removeprefix("youtube:")):
                    self.on_known(job.key)
                    continue
                if job.kind in ("media", "podcast") and not self._heard_before(job):
                    self._transcribe(job, None)
                    continue
            try:
                spec = self._spec(job)
            except JobError as exc:
                self._failed(job, exc)
                continue
            task = run_playlist if job.kind == "playlist" else run_job
            if self.sequential:
                fut: Future[str] = Future()
                with self._lock:
                    self.inflight[fut] = (job, time.monotonic())
                try:
                    fut.set_result(task(spec))
                except BaseException as exc:  # noqa: BLE001 - delivered to _done
                    fut.set_exception(exc)
                self._done(fut)
                continue
            assert self._pool is not None
            try:
                fut = self._pool.submit(task, spec)
            except (BrokenProcessPool, RuntimeError):
                self.ledger.release(job.key)
                self._pool_broken = True
                return
            with self._lock:
                self.inflight[fut] = (job, time.monotonic())
            fut.add_done_callback(self._done)

    def _spec(self, job: Job) -> JobSpec:
        config = self.config.to_dict()
        if not config["generate"]["max_concurrent_requests"]:
            config["generate"]["max_concurrent_requests"] = self.workers
        ctx = GenerationContext(config=config, state_dir=str(self.paths.state),
                                prompts_dir=str(self.paths.prompts))
        spec = JobSpec(key=job.key, kind=job.kind, backend=self.backend, context=ctx)
        if job.kind == "file":
            rel = job.key.removeprefix("file:")
            text = read_subtitle_file(self.paths.gate, rel)
            return replace(spec, file_path=rel, file_text=text)
        if job.kind == "media":
            return replace(spec, file_path=job.url)
        if job.kind == "podcast":
            return replace(spec, url=job.url)
        if job.kind == "youtube":
            vid = job.key.removeprefix("youtube:")
            return replace(spec, video_id=vid, url=job.url)
        if job.kind == "playlist":
            return replace(spec, video_id=job.key.removeprefix("playlist:"), url=job.url)
        raise PermanentError(f"{job.kind} sources are not supported yet")

    # -- results (pool callback thread) ----------------------------------------------
    def _done(self, fut: Future[str]) -> None:
        with self._lock:
            entry = self.inflight.pop(fut, None)
        if entry is None:  # given back by drain() already
            return
        job = entry[0]
        error: JobError | None = None
        try:
            raw = fut.result()
        except BrokenProcessPool:
            self._pool_broken = True
            error = NetworkError("a worker process died; retrying")
        except NeedsTranscriptionError as exc:
            if self._heard_before(job):  # heard, yet the worker found no transcript: no loop
                error = PermanentError(f"internal error: {job.key} was transcribed but its "
                                       "transcript could not be loaded")
            else:
                self._transcribe(job, exc)
                self._wake.set()
                return
        except JobError as exc:
            error = exc
        except ConfigError as exc:  # e.g. a proxy setting only a worker can check
            error = PermanentError(str(exc))
        except Exception as exc:  # noqa: BLE001 - anything else is a bug: fail, keep going
            log.exception("job %s crashed", job.key)
            error = PermanentError(f"internal error: {type(exc).__name__}: {exc}")
        if error is not None:
            failure = error
            self._keep(job.key, lambda: self._failed(job, failure))
        elif job.kind == "playlist":
            self._keep(job.key, lambda: self._expanded(job, raw))
        else:
            with self._lock:
                self._unsaved_results[job.key] = (job, raw)
            self._keep(job.key, lambda: self._commit_generated(job, raw))
            with self._lock:
                if job.key not in self._unsaved:
                    self._unsaved_results.pop(job.key, None)
        self._wake.set()

    def _commit_generated(self, job: Job, raw: str) -> None:
        raw, requests = split_result(raw)  # a YouTube job's request count rides along
        content = VideoContent.from_json(raw)
        if not self.ledger.save_generated(job.key, job.kind, job.url, raw, content.usage,
                                          content.meta.title):
            log.info("%s is already in the ledger; result not stored again", job.key,
                     extra={"job": job.key})
            return
        if requests is not None:
            self.ledger.record_source_requests(job.key, requests)
        log.info("generated %s (%s)", job.key, content.model, extra={"job": job.key})
        self.on_generated(job.key)

    # -- transcription ---------------------------------------------------------------
    def _speech_key(self, job: Job) -> str:
        return cache_key(job.key, EngineSettings.from_config(self.config.to_dict()))

    def _heard_before(self, job: Job) -> bool:
        """The job's transcript is cached (a retry, regeneration or restart)."""
        return (speech_dir(self.paths.state) / f"{self._speech_key(job)}.json").is_file()

    def _transcribe(self, job: Job, need: NeedsTranscriptionError | None) -> None:
        """Send a claimed job to the transcription pool (it keeps no generation slot)."""
        config = self.config.to_dict()
        why = unavailable_reason(EngineSettings.from_config(config))
        if why or not transcribable(job.kind):
            reason = need.reason if need else f"{posixpath.basename(job.url or job.key)}: {why}"
            self._failed(job, PermanentError(reason))
            return
        if job.kind == "media":
            try:  # through the gate now; the transcriber opens it through the gate again
                media.open_media(self.paths.gate, job.url or "").close()
            except JobError as exc:
                self._failed(job, exc)
                return
        task = TranscribeTask(key=job.key, kind=job.kind, config=config,
                              state_dir=str(self.paths.state), vault=str(self.paths.vault),
                              rel=job.url if job.kind == "media" else None, url=job.url,
                              allow_symlinks_out=self.paths.gate.allow_symlinks_out)
        log.info("transcribing %s", job.url or job.key, extra={"job": job.key})
        with self._lock:
            self.transcribing[job.key] = (job, time.monotonic(), self._speech_key(job))
        try:
            self.transcriber.submit(task, lambda fut, job=job: self._transcribed(job, fut))
        except (BrokenProcessPool, RuntimeError):
            with self._lock:
                self.transcribing.pop(job.key, None)
            self.transcriber.reset()
            self.ledger.release(job.key)
        self.on_changed()

    def _transcribed(self, job: Job, fut: Future[str]) -> None:
        with self._lock:
            entry = self.transcribing.pop(job.key, None)
        if entry is None:  # given back by drain() already
            return
        try:
            fut.result()
        except BrokenProcessPool:
            self.transcriber.reset()
            self._failed(job, NetworkError("the transcription process died; retrying"))
        except JobError as exc:
            self._failed(job, exc)
        except Exception as exc:  # noqa: BLE001 - a bug: fail this job, keep going
            log.exception("transcription of %s crashed", job.key)
            self._failed(job, PermanentError(f"internal error: {type(exc).__name__}: {exc}"))
        else:
            log.info("transcribed %s", job.url or job.key, extra={"job": job.key})
            with self._lock:
                self._heard.append(job)
        self.on_changed()
        self._wake.set()

    def _expanded(self, job: Job, raw: str) -> None:
        videos = json.loads(raw)
        keys = [f"youtube:{vid}" for vid, _title in videos]
        added = self.ledger.add_many(
            [(k, "youtube", f"https://www.youtube.com/watch?v={k[8:]}", None) for k in keys],
            parent=job.key)
        self.ledger.mark_expanded(job.key, keys)
        log.info("playlist has %d videos (%d new)", len(videos), len(added),
                 extra={"job": job.key})
        self.on_changed()

    def _failed(self, job: Job, exc: JobError) -> None:
        if isinstance(exc.usage, Usage):
            self.ledger.record_usage(job.key, exc.usage)
        d = dict(self.config.section("daemon"))
        if self.once and isinstance(exc, OfflineError):  # a one-shot run does not sit out
            # an outage: a few quick tries, then the job fails and says how to retry
            d["max_attempts"] = min(d["max_attempts"], ONCE_OFFLINE_ATTEMPTS)
            for k in ("backoff_base_seconds", "backoff_max_seconds"):
                d[k] = min(d[k], ONCE_OFFLINE_BACKOFF)
        offline = isinstance(exc, OfflineError) and not self.once
        state = self.ledger.fail(job.key, exc.reason, transient=exc.transient,
                                 max_attempts=d["max_attempts"],
                                 backoff_base=d["backoff_base_seconds"],
                                 backoff_max=d["backoff_max_seconds"],
                                 retry_after=exc.retry_after,
                                 offline=offline)
        # The job's attempts (daemon.max_attempts), as the inbox counts them; a model
        # request's own tries were logged by daemon.generate.retry_policy.
        if state == "ready" and offline:
            what = "the job will be retried once the network is back (attempt not counted)"
        elif state == "ready":
            what = (f"the job will be retried (attempt {job.attempts} of "
                    f"{d['max_attempts']} done)")
        else:
            what = "the job failed"
        reason = gave_up(exc.reason, job.attempts) if state != "ready" and exc.transient \
            else exc.reason  # the inbox's words: "...; gave up after 3 attempts (...)"
        log.log(logging.WARNING if state == "ready" else logging.ERROR, "%s: %s", what,
                reason, extra={"job": job.key})
        self.on_changed()

    def _rebuild_pool(self) -> None:
        log.warning("a worker process died; rebuilding the process pool")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        self._pool_broken = False

    # -- shutdown ----------------------------------------------------------------------
    def drain(self, deadline: float) -> None:
        """Stop claiming; wait for in-flight jobs until ``deadline`` (monotonic), then
        give unfinished ones back to ``ready`` and stop the workers."""
        self.stop()
        self.join(timeout=max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline:
            with self._lock:
                if not self.inflight:
                    break
            time.sleep(0.05)
        with self._lock:
            left = list(self.inflight.items())
            self.inflight.clear()
            hearing = [job for job, _, _ in self.transcribing.values()] + list(self._heard)
            self.transcribing.clear()
            self._heard.clear()
        self.transcriber.shutdown()  # a partial transcript is kept: the next run resumes
        for job in hearing:
            try:
                self.ledger.release(job.key)
                log.info("returned %s to the queue", job.key, extra={"job": job.key})
            except Exception:  # noqa: BLE001 - already moved by a late callback
                pass
        for fut, (job, _) in left:
            fut.cancel()
            try:
                self.ledger.release(job.key)
                log.info("returned %s to the queue", job.key, extra={"job": job.key})
            except Exception:  # noqa: BLE001 - already moved by a late callback
                pass
        self.kill_pool(grace=2.0)  # idle workers end normally (no leaked semaphores)

    def kill_pool(self, grace: float = 0.0) -> None:
        """Stop the pool's processes (none is left behind as an orphan): idle ones end
        within ``grace``, the rest are terminated (a second signal: at once)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            terminate_pool(pool, grace)
