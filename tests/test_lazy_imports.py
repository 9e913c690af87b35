"""The daemon process does not import what its first model call does not need (issue 14).

The first model call leaves from a worker forked from the fork server, which preloads the
backend's SDK (daemon.jobs.warm_start). The daemon itself starting up on the other core
must not import the same SDK: ``import anthropic`` is 1.2-1.5 s of CPU, and the daemon's
start-up used to pay it (the topic synthesizer's client was built at start) before it
claimed the first job. Likewise the PDF renderer (reportlab) belongs to the PDF pool and
local transcription (faster-whisper, PyAV) to the transcription pool.

Each case runs a real ``vaultd run --once`` (the console entry, as a user starts it) on a
fresh vault in a subprocess and lists the heavy modules loaded in the *daemon* process
once it has started, written its notes and stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import closed_port, vaultd_env

HEAVY = ["anthropic", "openai", "reportlab", "faster_whisper", "av"]

PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["vaultd", "run", "--once", "--vault", sys.argv[1]]
from daemon.cli.entry import main
rc = main()
print(json.dumps({"rc": rc, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def run_probe(vault: Path, env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(vault), json.dumps(HEAVY)],
                          capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["claude", "openai"])
def test_daemon_start_imports_no_model_sdk_pdf_or_whisper(tmp_path: Path, backend: str
                                                         ) -> None:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / "inbox.md").write_text("# Inbox\n\n")
    dead = f"http://127.0.0.1:{closed_port()}"
    # Topic synthesis on (the default) with a model backend: the daemon builds the
    # synthesizer's transport at start; building it must not import the SDK.
    (vault / ".vaultd" / "config.toml").write_text(
        f'[generate]\nbackend = "{backend}"\n\n[openai]\nbase_url = "{dead}/v1"\n')
    env = vaultd_env(tmp_path / "state", ANTHROPIC_API_KEY="sk-ant-test-not-a-real-key",
                     ANTHROPIC_BASE_URL=dead)
    result = run_probe(vault, env)
    assert result["rc"] == 0
    assert result["loaded"] == [], f"the daemon process imported {result['loaded']}"
    assert (vault / "Study Notes.base").exists()  # it really started and wrote the vault
