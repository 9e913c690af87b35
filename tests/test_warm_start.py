"""Worker start-up: forks of a preloaded fork server, the daemon's environment, fallback.

Each check runs in a fresh interpreter (the fork server is one per process and keeps
the preload list of its first use), driving the real ``ProcessPoolExecutor`` the way
the dispatcher does.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent("""
    import json, os, sys, time
    from concurrent.futures import ProcessPoolExecutor

    def first_client_imports():
        before = set(sys.modules)
        import anthropic
        anthropic.Anthropic(api_key="sk-ant-probe", base_url="http://127.0.0.1:9").close()
        return sorted(set(sys.modules) - before)

    def probe():
        import gc
        return {"pid": os.getpid(), "ppid": os.getppid(),
                "frozen": gc.get_freeze_count(),
                "numpy_loaded": "numpy" in sys.modules,
                "first_client_imports": first_client_imports(),
                "anthropic_loaded": "anthropic" in sys.modules,
                "late": os.environ.get("VAULTD_PROBE_LATE"),
                "daemon_pid": __import__("daemon.jobs.warm_start",
                                         fromlist=["daemon_pid"]).daemon_pid(),
                "level": __import__("logging").getLogger().level}

    if __name__ == "__main__":
        from daemon.logs import setup_logging
        from daemon.jobs.warm_start import method, pool_kwargs, start_early, warm
        start_early("claude")
        os.environ["VAULTD_PROBE_LATE"] = "set after the fork server started"
        t = time.monotonic()
        with ProcessPoolExecutor(max_workers=2,
                                 **pool_kwargs(setup_logging, ("ERROR",))) as pool:
            pool.submit(warm, "claude").result(timeout=120)
            first = time.monotonic() - t
            out = pool.submit(probe).result(timeout=120)
        out.update(method=method(), parent=os.getpid(), first_worker_seconds=first)
        print(json.dumps(out))
""")


def run_probe(tmp_path: Path, **env: str) -> dict[str, object]:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                    reason="no forkserver start method on this platform")
def test_workers_are_forks_of_a_preloaded_server(tmp_path: Path) -> None:
    out = run_probe(tmp_path)
    assert out["method"] == "forkserver"
    # The worker's parent is the fork server, not the daemon (whose pid it is told) ...
    assert out["ppid"] != out["parent"] and out["daemon_pid"] == out["parent"]
    # ... which imported the anthropic SDK once, before the worker was forked, and built a
    # throwaway client: a worker's first client imports nothing more (httpx's transport
    # package used to take 0.2 s of a fresh worker, on the path of the first model call).
    assert out["anthropic_loaded"] is True
    assert out["first_client_imports"] == []
    # The preloaded heap is frozen out of the garbage collector's sight, so that a
    # worker's collections do not copy the pages it shares with the fork server.
    assert isinstance(out["frozen"], int) and out["frozen"] > 10_000
    # Nothing a Claude worker needs before its first call pulls in numpy (and its BLAS
    # threads): local transcription imports it where it handles samples.
    assert out["numpy_loaded"] is False
    # The environment is the daemon's at pool creation, not the fork server's.
    assert out["late"] == "set after the fork server started"
    assert out["level"] == 40  # the pool's own initializer ran (logging at ERROR)


def test_spawn_fallback_still_works(tmp_path: Path) -> None:
    out = run_probe(tmp_path, VAULTD_START_METHOD="spawn")
    assert out["method"] == "spawn"
    assert out["ppid"] == out["parent"] == out["daemon_pid"]
    assert out["late"] == "set after the fork server started"
    assert out["level"] == 40


def test_the_entry_guesses_the_backend_like_the_daemon(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.cli.entry import _vault_arg, guess_backend

    vault = tmp_path / "v"
    (vault / ".vaultd").mkdir(parents=True)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert guess_backend(vault) == "offline"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert guess_backend(vault) == "claude"
    (vault / ".vaultd" / "config.toml").write_text('[generate]\nbackend = "offline"\n')
    assert guess_backend(vault) == "offline"
    assert _vault_arg(["run", "--vault", str(vault), "--once"]) == vault
    assert _vault_arg(["run", f"--vault={vault}"]) == vault
    assert _vault_arg(["status"]) is None
