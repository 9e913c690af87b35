"""The transcription pool: turns a source's audio into a cached transcript.

Transcription is CPU-heavy and long (minutes per lecture), so it runs in its own
bounded process pool (``[transcribe] workers``, default 1), never in a generation
worker's slot and never on the writer. The dispatcher (:mod:`daemon.pipeline`) sends a
job here when its transcript is not cached yet, and back to generation when it is.

:func:`run_transcription` is the function the pool runs: one :class:`TranscribeTask`
in, the speech cache key out (the transcript itself stays in the state dir, written
chunk by chunk, so a stop or crash resumes where it was). Errors leave as
:mod:`daemon.errors` types, which pickle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import JobError, PermanentError, TransientError
from daemon.jobs import orphans
from daemon.jobs.warm_start import pool_kwargs, terminate_pool
from daemon.logs import setup_logging
from daemon.sources import media
from daemon.sources.transcribe import (
    EngineSettings,
    cache_key,
    load_cached,
    progress,
    transcribe_file,
    unavailable_reason,
)
from vault_tools.models import format_timestamp
from vault_tools.pathgate import PathGate

log = logging.getLogger("vaultd.transcription")

SETTLE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class TranscribeTask:
    """What the pool needs for one job (pickled into the worker process)."""

    key: str  # ledger key
    kind: str  # "media" | "youtube" | "podcast"
    config: dict[str, dict[str, Any]]
    state_dir: str
    vault: str | None = None  # media: the vault root
    rel: str | None = None  # media: vault-relative path, gated again at the moment of use
    url: str | None = None  # remote sources
    allow_symlinks_out: bool = False  # the vault's path-gate setting


def _wait_settled(gate: PathGate, rel: str) -> None:
    """A file still being copied in is read once it stops changing."""
    deadline = time.monotonic() + SETTLE_WAIT_SECONDS
    while not media.settled(gate, rel):
        if time.monotonic() > deadline:
            raise TransientError(f"{rel} is still being copied; vaultd will try again")
        time.sleep(0.5)


def run_transcription(task: TranscribeTask) -> str:
    """Transcribe one source into the speech cache; returns its cache key."""
    settings = EngineSettings.from_config(task.config)
    if why := unavailable_reason(settings):
        raise PermanentError(why)
    key = cache_key(task.key, settings)
    state = Path(task.state_dir)
    if load_cached(state, key) is not None:
        return key
    try:
        if task.kind == "media":
            assert task.vault is not None and task.rel is not None
            gate = PathGate(task.vault, allow_symlinks_out=task.allow_symlinks_out)
            _wait_settled(gate, task.rel)
            with media.open_media(gate, task.rel) as recording:
                transcribe_file(recording, state, key, settings, name=task.rel)
        elif task.kind == "youtube":
            from daemon.sources.ytaudio import transcribe_video

            transcribe_video(task.key.removeprefix("youtube:"), task.config, state, key,
                             settings)
        elif task.kind == "podcast":
            from daemon.sources.podcast import transcribe_episode

            assert task.url is not None
            transcribe_episode(task.url, task.config, state, key, settings)
        else:
            raise PermanentError(f"{task.kind} sources cannot be transcribed")
    except JobError:
        raise
    except Exception as exc:  # noqa: BLE001 - a library surprise: fail this job, say what
        log.exception("%s: transcription crashed", task.key)
        raise PermanentError(f"internal error while transcribing: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None
    return key


def progress_text(state_dir: Path, key: str) -> str | None:
    """``transcribing 12:30 of 58:00`` for a running transcription, else None."""
    found = progress(state_dir, key)
    if found is None:
        return "transcribing"
    done, total = found
    if total <= 0:
        return f"transcribing {format_timestamp(done)}"
    return f"transcribing {format_timestamp(done)} of {format_timestamp(total)}"


class TranscriptionPool:
    """A bounded process pool for :func:`run_transcription` (or inline when sequential)."""

    def __init__(self, workers: int, log_level: str, *, sequential: bool = False) -> None:
        self.workers = max(1, workers)
        self.sequential = sequential
        self.log_level = log_level
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, task: TranscribeTask, done: Callable[[Future[str]], None]) -> Future[str]:
        if self.sequential:
            fut: Future[str] = Future()
            try:
                fut.set_result(run_transcription(task))
            except BaseException as exc:  # noqa: BLE001 - delivered to the callback
                fut.set_exception(exc)
            done(fut)
            return fut
        if self._pool is None:  # started on first use: most vaults never transcribe
            # Workers start like the other pools' (daemon.warmstart), log like the daemon
            # and die with it (daemon.orphans).
            init, initargs = orphans.initializer(setup_logging, self.log_level)
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             **pool_kwargs(init, initargs))
        fut = self._pool.submit(run_transcription, task)
        fut.add_done_callback(done)
        return fut

    def reset(self) -> None:
        """Drop a broken pool; the next submit starts a new one."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def shutdown(self, grace: float = 5.0) -> None:
        """Idle workers end normally within ``grace``; a transcription still running
        is stopped (its finished chunks are kept: the next run resumes)."""
        if self._pool is not None:
            terminate_pool(self._pool, grace)
            self._pool = None
