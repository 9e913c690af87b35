"""The function the process pool runs: one JobSpec in, VideoContent JSON out.

Pure with respect to the vault and the ledger (it touches neither): it fetches the
transcript (YouTube) or parses the text the dispatcher read (local files), picks the
backend, and generates. Errors leave as :mod:`daemon.errors` types, which pickle.
Backends are built once per worker process and reused.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

from daemon.errors import JobError, PermanentError
from daemon.generate.base import Backend, JobSpec, check_enough_words
from daemon.secrets import register_config, scrub
from daemon.sources.subtitle_file import load_file_source, title_from_filename  # noqa: F401
from vault_tools.models import SourceMeta, Transcript

log = logging.getLogger("vaultd.worker")

# Per backend name: the settings it was built with, and the backend. A config reload
# (SIGHUP) reaches workers only through each job's config; a backend built from older
# [generate]/[openai] settings (model, retries, server address) is built again.
_backends: dict[str, tuple[str, Backend]] = {}


def load_source(spec: JobSpec, stats: dict[str, int] | None = None
                ) -> tuple[Transcript, SourceMeta]:
    from daemon.sources.base import load_source as load  # the table of source kinds

    return load(spec, stats)


def get_backend(spec: JobSpec) -> Backend:
    config = spec.context.config
    settings = json.dumps([config.get("generate"), config.get("openai")], sort_keys=True,
                          default=str)
    built, backend = _backends.get(spec.backend, ("", None))
    if backend is None or built != settings:
        if spec.backend == "claude":
            from daemon.generate.claude import ClaudeBackend

            backend = ClaudeBackend(spec.context.config, spec.context.state_dir)
        elif spec.backend == "openai":
            from daemon.generate.openai_backend import OpenAIBackend

            backend = OpenAIBackend(spec.context.config, spec.context.state_dir)
        else:
            from daemon.generate.offline import OfflineBackend

            backend = OfflineBackend()
        _backends[spec.backend] = (settings, backend)
    return backend


def run_job(spec: JobSpec) -> str:
    """Generate one source. Returns ``VideoContent.to_json()``; for a YouTube video with
    one more top-level key, ``source_requests`` (requests YouTube answered; 0 from the
    cache), which the dispatcher takes out for the ledger (:func:`split_result`)."""
    register_config(spec.context.config)  # this process's logs scrub the job's secrets
    stats: dict[str, int] = {}
    try:
        transcript, meta = load_source(spec, stats)
        check_enough_words(transcript, spec.context.config)
        content = get_backend(spec).generate(transcript, meta, spec.context)
        # Model text is outside text: a secret it repeats never reaches a note.
        content = replace(content, note_markdown=scrub(content.note_markdown),
                          assessment_markdown=scrub(content.assessment_markdown))
        if "requests" not in stats:
            return content.to_json()
        return json.dumps({**asdict(content), "source_requests": stats["requests"]},
                          ensure_ascii=False)
    except JobError:
        raise
    except Exception as exc:  # a bug or an unexpected library error: say what, fail once
        log.exception("%s: generation crashed", spec.key)
        raise PermanentError(f"internal error while generating: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None


def split_result(raw: str) -> tuple[str, int | None]:
    """``(content JSON, requests)`` from what :func:`run_job` returned."""
    if '"source_requests"' not in raw:
        return raw, None
    data = json.loads(raw)
    requests = data.pop("source_requests", None)
    return json.dumps(data, ensure_ascii=False), requests


def run_playlist(spec: JobSpec) -> str:
    """Expand a playlist into its videos. Returns JSON ``[[video id, title], ...]``."""
    from daemon.sources.youtube import expand_playlist

    assert spec.video_id is not None  # the playlist id
    register_config(spec.context.config)
    try:
        videos = expand_playlist(spec.video_id, spec.context.config,
                                 Path(spec.context.state_dir))
    except JobError:
        raise
    except Exception as exc:  # noqa: BLE001 - same contract as run_job
        log.exception("%s: playlist expansion crashed", spec.key)
        raise PermanentError(f"internal error while reading the playlist: "
                             f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not videos:
        raise PermanentError("the playlist is empty or private")
    return json.dumps(videos)
