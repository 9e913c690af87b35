"""Service files and `vaultd service install|uninstall|status` in a temporary HOME.

systemctl and launchctl are replaced by small shell scripts on PATH that log their
arguments, so the commands vaultd runs are observed without touching a real service
manager. The rendered unit is checked by the real `systemd-analyze verify` when present.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.errors import VaultMissingError
from daemon.service_install import (
    STOP_TIMEOUT_SEC,
    WATCHDOG_SEC,
    ServiceInstallError,
    default_exe,
    install,
    launchd_label,
    render_launchd_plist,
    render_systemd_unit,
    service_status,
    uninstall,
    unit_instance,
    unit_name,
    write_examples,
)

REPO = Path(__file__).resolve().parent.parent

FAKE_TOOL = """#!/bin/sh
echo "${0##*/} $*" >> "$FAKE_LOG"
case "$*" in
  *" show "*) printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\n'
              printf 'MainPID=4242\\nStatusText=watching inbox.md; 2 working\\n' ;;
  "print "*) printf 'gui/501/x = {\\n\\tstate = running\\n\\tpid = 777\\n}\\n' ;;
esac
case "$*" in
  *bootout*) exit 3 ;;
esac
if [ -n "$FAKE_FAIL" ]; then echo "$FAKE_FAIL" >&2; exit 1; fi
exit 0
"""


def _directives(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no systemctl/launchctl unless a test adds one
    return home


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """systemctl and launchctl stand-ins; returns the log of their invocations."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("systemctl", "launchctl"):
        tool = bin_dir / name
        tool.write_text(FAKE_TOOL)
        tool.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    return log


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "My Vault"
    v.mkdir()
    return v.resolve()


# -- rendering ---------------------------------------------------------------------


def test_reference_copies_match_the_renderers(tmp_path: Path) -> None:
    written = write_examples(tmp_path)
    for path in written:
        repo_copy = REPO / "systemd" / path.name
        assert repo_copy.read_bytes() == path.read_bytes(), (
            f"{repo_copy} is stale; regenerate: python -m daemon.service_install systemd")


def test_unit_instance_is_stable_and_safe() -> None:
    # Installed units are found again by this name: changing the scheme orphans them.
    assert unit_instance(Path("/home/you/Obsidian/Notes")) == "notes-c9e4dc05"
    assert unit_name(Path("/home/you/Obsidian/Notes")) == "vaultd-notes-c9e4dc05.service"
    odd = unit_instance(Path("/srv/Ünïcode  Vault (2024)!"))
    assert odd.startswith("n-code-vault-2024-")
    assert unit_instance(Path("/srv/***")).startswith("vault-")
    assert unit_instance(Path("/a/Notes")) != unit_instance(Path("/b/Notes"))


def test_unit_directives(vault: Path) -> None:
    unit = render_systemd_unit(vault, exe=default_exe(), instance=unit_instance(vault))
    d = _directives(unit)
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["main"]
    assert d["Restart"] == ["on-failure"]
    assert d["KillMode"] == ["mixed"]
    assert d["WatchdogSec"] == [str(WATCHDOG_SEC)]
    assert int(d["TimeoutStopSec"][0]) == STOP_TIMEOUT_SEC >= 120
    assert d["StartLimitIntervalSec"] and d["StartLimitBurst"]
    assert "-%E/vaultd/env" in d["EnvironmentFile"]
    assert d["StateDirectory"] == ["vaultd"]  # the base: see tests/test_single_daemon.py
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["PrivateTmp"] == ["yes"]
    assert d["ReadWritePaths"] == [f'-"{vault}"']  # quoted: the name has a space
    exe = sys.executable
    assert d["ExecStart"] == [f'{exe} -P -m daemon.cli run --vault "{vault}"'] or \
        d["ExecStart"] == [f'"{exe}" -P -m daemon.cli run --vault "{vault}"']
    assert "LoadCredential" not in d

    plain = _directives(render_systemd_unit(vault, exe=default_exe(), instance="x",
                                            sandbox=False,
                                            credential_file=Path("/run/key file")))
    assert "ProtectSystem" not in plain and "ReadWritePaths" not in plain
    assert plain["LoadCredential"] == ['anthropic-api-key:"/run/key file"']
    assert plain["NoNewPrivileges"] == ["yes"]


def test_specifiers_and_dollars_are_escaped(tmp_path: Path) -> None:
    odd = tmp_path / "100% $HOME"
    unit = render_systemd_unit(odd, exe=["/usr/bin/vaultd"], instance="x")
    d = _directives(unit)
    assert d["ExecStart"] == [f'/usr/bin/vaultd run --vault "{tmp_path}/100%% $$HOME"']
    assert d["ReadWritePaths"] == [f'-"{tmp_path}/100%% $HOME"']


@pytest.mark.parametrize("name", ['say "hi"', "back\\slash", "new\nline"])
def test_unrepresentable_paths_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ServiceInstallError):
        render_systemd_unit(tmp_path / name, exe=["/usr/bin/vaultd"], instance="x")


def test_relative_paths_and_bad_instances_are_refused() -> None:
    with pytest.raises(ServiceInstallError):
        render_systemd_unit(Path("Notes"), exe=["/usr/bin/vaultd"], instance="x")
    with pytest.raises(ServiceInstallError):
        render_systemd_unit(Path("/v"), exe=["vaultd"], instance="x")
    with pytest.raises(ServiceInstallError):
        render_systemd_unit(Path("/v"), exe=["/usr/bin/vaultd"], instance="../evil")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
@pytest.mark.parametrize("variant", ["sandboxed", "plain+credential", "odd-path"])
def test_systemd_analyze_verify(tmp_path: Path, variant: str) -> None:
    vault = tmp_path / ("100% $odd vault" if variant == "odd-path" else "vault")
    vault.mkdir()
    key = tmp_path / "key"
    key.write_text("sk-test")
    unit = render_systemd_unit(
        vault, exe=default_exe(), instance=unit_instance(vault),
        sandbox=variant != "plain+credential",
        credential_file=key if variant == "plain+credential" else None)
    ok = _verify(tmp_path, unit_name(vault), unit)
    assert ok.returncode == 0 and unit_name(vault) not in ok.stderr, ok.stderr
    # Control: the same check catches a broken unit, so the assertion above can fail.
    broken = unit.replace(sys.executable, "/nonexistent/vaultd") + "[Service]\nBogusKey=1\n"
    bad = _verify(tmp_path, "broken-" + unit_name(vault), broken)
    assert bad.returncode != 0 and "BogusKey" in bad.stderr, bad.stderr


def _verify(tmp_path: Path, name: str, unit: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(unit)
    env = dict(os.environ)
    if not env.get("XDG_RUNTIME_DIR"):  # the --user manager needs one, even offline
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    return subprocess.run(["systemd-analyze", "--user", "verify", str(path)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_plist_keys(vault: Path, home: Path) -> None:
    label = launchd_label(vault)
    data = plistlib.loads(render_launchd_plist(vault, exe=default_exe(), label=label))
    assert data["Label"] == label
    assert data["ProgramArguments"] == [*default_exe(), "run", "--vault", str(vault)]
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    assert isinstance(data["ThrottleInterval"], int) and data["ThrottleInterval"] >= 10
    logs = home / "Library" / "Logs" / "vaultd"
    assert Path(data["StandardOutPath"]).parent == logs
    assert Path(data["StandardErrorPath"]).parent == logs
    assert data["ExitTimeOut"] == STOP_TIMEOUT_SEC


# -- install / uninstall / status -----------------------------------------------------


def _tree(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*"))


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_dry_run_changes_nothing(home: Path, vault: Path, fake_tools: Path,
                                 platform: str) -> None:
    report = install(vault, dry_run=True, platform=platform)
    assert _tree(home) == []
    assert fake_tools.read_text() == ""
    assert not report.changed and report.commands
    assert all(not c.ran and c.skipped == "dry run" for c in report.commands)
    text = report.format()
    assert report.content.strip() in text
    assert str(vault) in report.content
    for c in report.commands:
        assert " ".join(c.argv) in text.replace("'", "")
    assert "Would write" in text and "Would run" in text


def test_install_systemd_runs_commands(home: Path, vault: Path, fake_tools: Path) -> None:
    report = install(vault, dry_run=False, platform="linux")
    name = unit_name(vault)
    unit = home / ".config" / "systemd" / "user" / name
    assert report.path == unit and report.changed and report.ok
    assert unit.read_text() == report.content
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    env = home / ".config" / "vaultd" / "env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert "ANTHROPIC_API_KEY" in env.read_text()
    assert fake_tools.read_text().splitlines() == [
        "systemctl --user daemon-reload",
        f"systemctl --user enable {name}",
        f"systemctl --user restart {name}",
    ]
    assert [c.returncode for c in report.commands] == [0, 0, 0]
    assert f"$ systemctl --user enable {name}" in report.format()


def test_install_keeps_an_existing_env_file_and_warns_if_loose(
    home: Path, vault: Path, fake_tools: Path
) -> None:
    env = home / ".config" / "vaultd" / "env"
    env.parent.mkdir(parents=True)
    env.write_text("ANTHROPIC_API_KEY=sk-secret\n")
    env.chmod(0o644)
    report = install(vault, dry_run=False, platform="linux")
    assert env.read_text() == "ANTHROPIC_API_KEY=sk-secret\n"
    assert any("chmod 600" in n for n in report.notes)
    assert "sk-secret" not in report.format()


def test_install_without_systemctl_still_writes(home: Path, vault: Path) -> None:
    report = install(vault, dry_run=False, platform="linux")
    assert report.path.is_file() and report.ok
    assert all(not c.ran and "not found" in c.skipped for c in report.commands)


def test_failed_command_stops_the_rest(home: Path, vault: Path, fake_tools: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "Failed to connect to bus: No medium found")
    report = install(vault, dry_run=False, platform="linux")
    assert not report.ok
    assert report.commands[0].returncode == 1
    assert [c.ran for c in report.commands] == [True, False, False]
    assert "exit 1: Failed to connect to bus" in report.format()
    assert any("enable-linger" in n for n in report.notes)


def test_xdg_config_home_is_respected(home: Path, vault: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    report = install(vault, dry_run=False, platform="linux")
    assert report.path == tmp_path / "xdg" / "systemd" / "user" / unit_name(vault)
    assert report.path.is_file()


def test_two_vaults_two_units(home: Path, tmp_path: Path, fake_tools: Path) -> None:
    a, b = tmp_path / "a" / "Notes", tmp_path / "b" / "Notes"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    ra = install(a, dry_run=False, platform="linux")
    rb = install(b, dry_run=False, platform="linux")
    assert ra.name != rb.name and ra.path.is_file() and rb.path.is_file()
    assert f"--vault {a.resolve()}" in ra.path.read_text()
    assert f"--vault {b.resolve()}" in rb.path.read_text()
    link = tmp_path / "link"
    link.symlink_to(a)
    assert install(link, dry_run=True, platform="linux").name == ra.name


def test_uninstall(home: Path, vault: Path, fake_tools: Path) -> None:
    path = install(vault, dry_run=False, platform="linux").path
    assert uninstall(vault, dry_run=True, platform="linux").path == path
    assert path.exists()
    fake_tools.write_text("")
    report = uninstall(vault, dry_run=False, platform="linux")
    assert not path.exists() and report.changed and report.ok
    assert fake_tools.read_text().splitlines() == [
        f"systemctl --user disable --now {unit_name(vault)}",
        "systemctl --user daemon-reload",
    ]
    again = uninstall(vault, dry_run=False, platform="linux")
    assert not again.changed and again.commands == []
    assert any("not installed" in n for n in again.notes)


def test_status_systemd(home: Path, vault: Path, fake_tools: Path) -> None:
    assert service_status(vault, platform="linux").state == "not installed"
    install(vault, dry_run=False, platform="linux")
    st = service_status(vault, platform="linux")
    assert st.installed and st.state == "running" and st.pid == 4242
    assert st.status_text == "watching inbox.md; 2 working"
    assert "running (pid 4242)" in st.summary()
    assert st.to_dict()["state"] == "running"


def test_status_without_systemctl_is_unknown(home: Path, vault: Path) -> None:
    install(vault, dry_run=False, platform="linux")
    st = service_status(vault, platform="linux")
    assert st.installed and st.state == "unknown"
    assert "not found" in st.summary()


def test_launchd_install_status_uninstall(home: Path, vault: Path, fake_tools: Path) -> None:
    report = install(vault, dry_run=False, platform="darwin")
    label = launchd_label(vault)
    plist = home / "Library" / "LaunchAgents" / f"{label}.plist"
    assert report.path == plist and report.ok  # bootout of a not-loaded agent may fail
    assert plistlib.loads(plist.read_bytes())["Label"] == label
    assert (home / "Library" / "Logs" / "vaultd").is_dir()
    uid = os.getuid()
    assert fake_tools.read_text().splitlines() == [
        f"launchctl bootout gui/{uid}/{label}",
        f"launchctl enable gui/{uid}/{label}",
        f"launchctl bootstrap gui/{uid} {plist}",
    ]
    st = service_status(vault, platform="darwin")
    assert st.state == "running" and st.pid == 777
    assert uninstall(vault, dry_run=False, platform="darwin").changed
    assert not plist.exists()


def test_refusals(home: Path, tmp_path: Path, vault: Path) -> None:
    with pytest.raises(VaultMissingError):
        install(tmp_path / "absent", dry_run=True, platform="linux")
    with pytest.raises(ServiceInstallError):
        install(vault, dry_run=True, platform="win32")
