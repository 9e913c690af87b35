"""The daily token budget pauses work (jobs wait, nothing fails) and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.jobs.dispatcher import Dispatcher
from daemon.jobs.ledger import Ledger
from daemon.paths import VaultPaths
from vault_tools.models import Usage


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[VaultPaths, Ledger]:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    vault = tmp_path / "v"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text("[generate]\ndaily_token_budget = 1000\n")
    paths = VaultPaths.from_config(vault, load_config(vault))
    return paths, Ledger(paths.state / "ledger.sqlite3")


def test_budget_reached_pauses_claims_without_failing(setup: tuple[VaultPaths, Ledger]
                                                      ) -> None:
    paths, ledger = setup
    config = load_config(paths.vault)
    ledger.add("youtube:spentspent1", "youtube", None)
    job = ledger.claim_next("t")
    assert job is not None
    ledger.mark_generated(job.key, "{}", Usage(900, 200, 0, 0, 0.01), "T")  # 1,100 tokens
    ledger.add("youtube:waitingwait", "youtube", None)
    changed: list[str] = []
    d = Dispatcher(paths, ledger, config, backend="claude", on_generated=changed.append,
                   on_changed=lambda: changed.append("changed"), workers=1, sequential=True)
    d._fill()  # one pass of the dispatcher loop, in this thread
    waiting = ledger.get("youtube:waitingwait")
    assert waiting is not None and waiting.state == "ready" and waiting.attempts == 0
    assert d.paused_reason == "daily token budget reached (1100 of 1000 tokens)"
    assert not changed
    # The offline backend costs nothing and is never paused.
    offline = Dispatcher(paths, ledger, config, backend="offline", on_generated=changed.append,
                         on_changed=lambda: None, workers=1, sequential=True)
    assert not offline._budget_exhausted()
