"""Finished generations that could not reach the ledger before the daemon stopped.

The dispatcher keeps a result it could not commit (state folder full or read-only) in
memory until it can; when the daemon must stop first (``run --once`` giving up, a
signal), those results are written here instead of being thrown away, and the next
start commits them (:func:`restore`) — a generation is never paid for twice. The spool
is tried in the state folder first, then in the system temp folder (the state folder's
disk may be the full one). One JSON file per job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

from daemon.jobs.ledger import Ledger
from vault_tools.atomic import write_atomic
from vault_tools.models import VideoContent

log = logging.getLogger("vaultd")


def spool_dirs(state: Path) -> list[Path]:
    return [state / "spool", Path(tempfile.gettempdir()) / f"vaultd-spool-{state.name}"]


def save(state: Path, key: str, kind: str, url: str | None, raw: str) -> Path | None:
    """Write one result; returns where, or None when no folder could take it."""
    name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16] + ".json"
    data = json.dumps({"key": key, "kind": kind, "url": url, "content": raw})
    for folder in spool_dirs(state):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(folder / name, data)
        except OSError as exc:
            log.warning("could not spool %s to %s: %s", key, folder, exc.strerror or exc)
            continue
        return folder / name
    return None


def restore(state: Path, ledger: Ledger) -> list[str]:
    """Commit every spooled result to the ledger (at start); returns their keys."""
    done: list[str] = []
    for folder in spool_dirs(state):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                item = json.loads(path.read_text(encoding="utf-8"))
                content = VideoContent.from_json(item["content"])
            except (OSError, ValueError, KeyError) as exc:
                log.warning("spooled result %s unreadable: %s", path, exc)
                continue
            ledger.save_generated(item["key"], item["kind"], item["url"], item["content"],
                                  content.usage, content.meta.title)
            path.unlink(missing_ok=True)
            done.append(item["key"])
            log.info("committed %s from the spool (not generated again)", item["key"],
                     extra={"job": item["key"]})
    return done
