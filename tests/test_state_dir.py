"""The state-folder rule and the service files agree (issue 17, item 4): whichever way
vaultd is started -- the systemd unit, the launchd agent, a terminal -- a vault's state
folder (ledger, heartbeat, caches) is the same, and the ledger an older unit kept in its
own ``vaultd/<instance>/`` folder is taken over rather than abandoned."""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon.service_install import render_systemd_unit, unit_instance
from tests.faults.common import read_jobs
from tests.test_single_daemon import (
    EXE,
    as_launchd,
    as_unit,
    bare_env,
    make_vault,
    state_dir_in,
    status,
    vaultd_cli,
)


def old_unit(vault: Path) -> str:
    """The unit as vaultd rendered it before: a per-vault ``StateDirectory=``."""
    unit = render_systemd_unit(vault, exe=EXE, instance=unit_instance(vault))
    assert "StateDirectory=vaultd\n" in unit
    return unit.replace("StateDirectory=vaultd\n",
                        f"StateDirectory=vaultd/{unit_instance(vault)}\n")


def test_every_way_of_starting_resolves_one_state_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    vault, _ = make_vault(tmp_path, 0)
    terminal = state_dir_in(bare_env(home), vault)
    assert terminal.parent == home / ".local" / "state" / "vaultd"
    assert state_dir_in(as_unit(home, vault)[1], vault) == terminal
    assert state_dir_in(as_unit(home, vault, old_unit(vault))[1], vault) == terminal
    assert state_dir_in(as_launchd(home, vault)[1], vault) == terminal


def test_a_state_directory_set_by_hand_is_used_as_given(tmp_path: Path) -> None:
    """Only this vault's own older unit folder is recognised; any other value of
    ``$STATE_DIRECTORY`` is a base, as the contract says."""
    vault, _ = make_vault(tmp_path, 0)
    other = tmp_path / "somewhere" / "vaultd" / unit_instance(tmp_path / "other")
    env = bare_env(tmp_path, STATE_DIRECTORY=str(other))
    assert state_dir_in(env, vault).parent == other


def run_once(env: dict[str, str], vault: Path) -> subprocess.CompletedProcess[str]:
    proc = vaultd_cli(env, "run", "--once", "--vault", str(vault))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_the_ledger_of_an_older_service_is_taken_over(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    vault, lines = make_vault(tmp_path, 1)
    (vault / "inbox.md").write_text("# Inbox\n\n" + lines[0] + "\n")
    base = home / ".local" / "state" / "vaultd"
    # What an older unit did: its $STATE_DIRECTORY was vaultd/<instance>, and the
    # per-vault folder was nested inside it.
    legacy_base = base / unit_instance(vault)
    run_once(bare_env(home, VAULTD_STATE_DIR=str(legacy_base)), vault)
    before = read_jobs(legacy_base)
    assert [j["state"] for j in before.values()] == ["done"]

    proc = run_once(bare_env(home), vault)  # the terminal, after the upgrade
    assert "moved the state an older service kept" in proc.stderr
    after = read_jobs(base)
    assert after.keys() == before.keys()
    for key, job in after.items():  # taken over, not done (and paid) again
        assert job["state"] == "done"
        assert job["generated_at"] == before[key]["generated_at"]
    assert not legacy_base.exists()
    assert status(bare_env(home), vault)["counts"]["done"] == 1  # what `status` shows


def test_two_ledgers_are_never_merged(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    vault, lines = make_vault(tmp_path, 1)
    base = home / ".local" / "state" / "vaultd"
    run_once(bare_env(home), vault)  # a terminal ledger first (empty inbox)
    (vault / "inbox.md").write_text("# Inbox\n\n" + lines[0] + "\n")
    legacy_base = base / unit_instance(vault)
    run_once(bare_env(home, VAULTD_STATE_DIR=str(legacy_base)), vault)
    legacy = read_jobs(legacy_base)
    proc = run_once(bare_env(home), vault)
    assert "has a ledger too" in proc.stderr and str(legacy_base) in proc.stderr
    assert read_jobs(legacy_base) == legacy  # left as it was, for the user to compare


def test_a_state_folder_that_cannot_be_made_is_said_plainly(tmp_path: Path) -> None:
    """E.g. a unit from an older vaultd whose sandbox lets it write only its own folder."""
    vault, _ = make_vault(tmp_path, 0)
    (tmp_path / "a-file").write_text("not a folder")
    env = bare_env(tmp_path, VAULTD_STATE_DIR=str(tmp_path / "a-file" / "state"))
    proc = vaultd_cli(env, "run", "--once", "--vault", str(vault))
    assert proc.returncode == 1
    assert "cannot write the state folder" in proc.stderr
    assert "vaultd service install" in proc.stderr and "Traceback" not in proc.stderr
