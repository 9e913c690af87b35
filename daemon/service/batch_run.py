"""``vaultd run --batch``: backfill queued videos through the Message Batches API.

Half the price of direct calls, results within hours. The command

1. reads the inbox (registering its sources, as the daemon does),
2. claims every ready video job (owner ``batch``, so a daemon start does not put them
   back in the queue), fetches their transcripts, and submits one batch,
3. remembers the batch in ``<state>/batch.json`` — a restarted ``--batch`` resumes
   polling instead of paying again —
4. polls until the batch has ended, commits every result to the ledger exactly like a
   worker would (``generated``, with usage), generates directly the few videos too long
   for one request, and
5. hands over to the normal daemon in ``--once`` mode, which writes the notes, PDFs,
   graph note and inbox lines.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace

from daemon.config import Config
from daemon.errors import ConfigError, JobError, NeedsTranscriptionError
from daemon.generate.base import GenerationContext, JobSpec
from daemon.generate.worker import load_source
from daemon.jobs.dispatcher import read_subtitle_file
from daemon.jobs.ledger import Job, Ledger
from daemon.paths import VaultPaths
from daemon.writer.inbox_sync import InboxSync
from vault_tools.inbox import edit_inbox

log = logging.getLogger("vaultd.batch")

OWNER = "batch"


class BatchRun:
    def __init__(self, paths: VaultPaths, config: Config, ledger: Ledger, *,
                 poll_seconds: float = 30.0, limit: int = 500) -> None:
        self.paths = paths
        self.config = config
        self.ledger = ledger
        self.poll_seconds = poll_seconds
        self.limit = limit
        self.ticket_file = paths.state / "batch.json"

    def _spec(self, job: Job) -> JobSpec:
        ctx = GenerationContext(config=self.config.to_dict(), state_dir=str(self.paths.state),
                                prompts_dir=str(self.paths.prompts))
        spec = JobSpec(key=job.key, kind=job.kind, backend="claude", context=ctx)
        if job.kind == "file":
            rel = job.key.removeprefix("file:")
            return replace(spec, file_path=rel,
                           file_text=read_subtitle_file(self.paths.gate, rel))
        return replace(spec, video_id=job.key.removeprefix("youtube:"), url=job.url)

    def _fail(self, key: str, exc: JobError) -> None:
        d = self.config.section("daemon")
        self.ledger.fail(key, exc.reason, transient=exc.transient,
                         max_attempts=d["max_attempts"], backoff_base=d["backoff_base_seconds"],
                         backoff_max=d["backoff_max_seconds"], retry_after=exc.retry_after)

    def _batch_jobs(self, keys: list[str]) -> list:  # type: ignore[type-arg]
        from daemon.generate.claude_batch import BatchJob

        out = []
        for job in self.ledger.get_many(keys).values():
            try:
                spec = self._spec(job)
                transcript, meta = load_source(spec)  # cached: no refetch on resume
            except NeedsTranscriptionError:
                # Audio to hear first: left for `vaultd run` (its transcription pool).
                self.ledger.release(job.key)
                log.info("%s needs transcription; left for vaultd run", job.key,
                         extra={"job": job.key})
                continue
            except JobError as exc:
                self._fail(job.key, exc)
                continue
            out.append(BatchJob(job.key, transcript, meta, spec.context))
        return out

    def run(self, stop: threading.Event) -> dict[str, int]:
        from daemon.generate.claude import ClaudeBackend
        from daemon.generate.claude_batch import BatchTicket, collect_batch, submit_batch

        backend = ClaudeBackend(self.config.to_dict(), str(self.paths.state))
        if self.ticket_file.exists():
            saved = json.loads(self.ticket_file.read_text(encoding="utf-8"))
            ticket = BatchTicket.from_json(saved["ticket"])
            keys: list[str] = saved["keys"]
            log.info("resuming batch %s (%d videos)", ticket.batch_id, len(keys))
            jobs = self._batch_jobs(keys)
        else:
            sync = InboxSync(self.paths.vault, self.paths.inbox, self.ledger, self.paths.gate)
            edit_inbox(self.paths.inbox, sync.transform, gate=self.paths.gate)
            claimed = []
            while len(claimed) < self.limit:
                job = self.ledger.claim_next(OWNER, kinds=("youtube", "file"))
                if job is None:
                    break
                claimed.append(job.key)
            if not claimed:
                return {"submitted": 0, "generated": 0, "failed": 0}
            jobs = self._batch_jobs(claimed)
            keys = [j.key for j in jobs]
            ticket = submit_batch(backend, jobs)
            self.paths.state.mkdir(parents=True, exist_ok=True)
            self.ticket_file.write_text(json.dumps({"ticket": ticket.to_json(), "keys": keys}),
                                        encoding="utf-8")
        results = None
        while results is None:
            results = collect_batch(backend, ticket, jobs)
            if results is None:
                log.info("batch %s still processing; next look in %.0f s", ticket.batch_id,
                         self.poll_seconds)
                if stop.wait(self.poll_seconds):
                    return {"submitted": len(keys), "generated": 0, "failed": 0}
        by_key = {j.key: j for j in jobs}
        for key in ticket.direct:  # too long for one request: the normal way
            job = by_key[key]
            try:
                results[key] = backend.generate(job.transcript, job.meta, job.ctx)
            except JobError as exc:
                results[key] = exc
        counts = {"submitted": len(keys), "generated": 0, "failed": 0}
        for key, outcome in results.items():
            if isinstance(outcome, JobError):
                self._fail(key, outcome)
                counts["failed"] += 1
            else:
                self.ledger.mark_generated(key, outcome.to_json(), outcome.usage,
                                           outcome.meta.title)
                counts["generated"] += 1
        for key in keys:  # anything the batch did not answer goes back to the queue
            job = self.ledger.get(key)
            if job is not None and job.state == "running":
                self.ledger.release(key)
        self.ticket_file.unlink(missing_ok=True)
        return counts


def check_batch_backend(config: Config) -> None:
    from daemon.service.daemon import resolve_backend

    name, _ = resolve_backend(config)
    if name != "claude":
        raise ConfigError("generate.backend", "--batch needs the Claude backend: set "
                          "ANTHROPIC_API_KEY or generate.api_key_file")



