"""One vault, one daemon, one ledger -- whichever way the daemon was started (issue 17,
item 4).

The daemon is started the way the generated systemd unit starts it (its ``ExecStart``
argv and the environment systemd gives it: ``Environment=``, ``$STATE_DIRECTORY`` from
``StateDirectory=``, specifiers expanded for a user manager), the way the launchd plist
starts it (``ProgramArguments`` + ``EnvironmentVariables`` in launchd's bare
environment), and from a terminal (no ``STATE_DIRECTORY``). All as real subprocesses on
a temp vault under a temp ``$HOME``; a real systemd user manager is used when the
machine has one.
"""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.service_install import (
    launchd_label,
    render_launchd_plist,
    render_systemd_unit,
    unit_instance,
)
from daemon.vaultlock import LOCK_TEXT
from tests.faults.common import read_jobs
from tests.helpers import TOPICS, append_in_place, lecture_srt, wait_for
from tests.procs import SESSION_VAR
from tests.test_service_install import _directives

Env = dict[str, str]
EXE = [str(Path(sys.executable).absolute()), "-P", "-m", "daemon.cli"]


def bare_env(home: Path, **extra: str) -> Env:
    """What a login shell would have, minus anything that moves the state folder."""
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    if SESSION_VAR in os.environ:
        env[SESSION_VAR] = os.environ[SESSION_VAR]
    env.update(extra)
    return env


def terminal(home: Path, vault: Path, **extra: str) -> tuple[list[str], Env]:
    return [*EXE, "run", "--vault", str(vault)], bare_env(home, **extra)


def unit_dirs(home: Path) -> dict[str, str]:
    """The specifiers of a systemd *user* manager with no XDG variables set."""
    return {"%h": str(home), "%S": str(home / ".local" / "state"),
            "%C": str(home / ".cache"), "%E": str(home / ".config")}


def _expand(text: str, spec: dict[str, str]) -> str:
    for key, value in spec.items():
        text = text.replace(key, value)
    return text.replace("%%", "%").replace("$$", "$")


def unit_env(unit: str, home: Path) -> Env:
    """The environment systemd gives the unit's main process (directories created)."""
    d, spec = _directives(unit), unit_dirs(home)
    env = bare_env(home)
    for item in d.get("Environment", []):
        key, value = _expand(item, spec).split("=", 1)
        env[key] = value
    for directive, var, root in (("StateDirectory", "STATE_DIRECTORY", "%S"),
                                 ("CacheDirectory", "CACHE_DIRECTORY", "%C")):
        paths = [Path(spec[root]) / word for v in d.get(directive, []) for word in v.split()]
        for path in paths:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if paths:
            env[var] = ":".join(str(p) for p in paths)
    return env


def as_unit(home: Path, vault: Path, unit: str | None = None) -> tuple[list[str], Env]:
    """(argv, env) of the daemon as the generated unit starts it."""
    unit = unit or render_systemd_unit(vault, exe=EXE, instance=unit_instance(vault))
    exec_start = _directives(unit)["ExecStart"][0]
    argv = [_expand(w, unit_dirs(home)) for w in shlex.split(exec_start)]
    return argv, unit_env(unit, home)


def as_launchd(home: Path, vault: Path) -> tuple[list[str], Env]:
    """(argv, env) of the daemon as the launchd agent starts it: launchd passes its own
    few variables (HOME, PATH, USER, SHELL, TMPDIR) plus ``EnvironmentVariables``."""
    plist = plistlib.loads(render_launchd_plist(vault, exe=EXE, label=launchd_label(vault),
                                                log_dir=home / "Logs"))
    env = bare_env(home, USER="you", SHELL="/bin/sh", TMPDIR="/tmp/")
    env.pop("LANG")
    env.update(plist["EnvironmentVariables"])
    return list(plist["ProgramArguments"]), env


def state_dir_in(env: Env, vault: Path) -> Path:
    """The state folder a process with ``env`` resolves for ``vault`` (asked of a real
    interpreter, so nothing of this test process's environment leaks in)."""
    out = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                          "from daemon.paths import state_dir_for; "
                          "print(state_dir_for(Path(sys.argv[1])))", str(vault)],
                         env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return Path(out.stdout.strip())


def vaultd_cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], env=env, capture_output=True, text=True, timeout=120)


def status(env: Env, vault: Path) -> dict:  # type: ignore[type-arg]
    proc = vaultd_cli(env, "status", "--vault", str(vault), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def make_vault(tmp_path: Path, n: int = 2) -> tuple[Path, list[str]]:
    vault = tmp_path / "Study Vault"
    (vault / "Lectures").mkdir(parents=True)
    (vault / ".vaultd").mkdir()
    (vault / ".vaultd" / "config.toml").write_text(
        "[daemon]\ndebounce_seconds = 0.1\nrescan_seconds = 1.0\n[pdf]\nenabled = false\n")
    lines = []
    for i, topic in enumerate(TOPICS[:n]):
        (vault / "Lectures" / f"{topic}.srt").write_text(lecture_srt(topic, 40, seed=i))
        lines.append(f"- [[Lectures/{topic}.srt]]")
    (vault / "inbox.md").write_text("# Inbox\n\n")
    return vault.resolve(), lines


class Daemons:
    """Started daemons, each stopped (SIGTERM, then SIGKILL) at the end of the test."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, how: tuple[list[str], Env]) -> subprocess.Popen[bytes]:
        argv, env = how
        log = open(self.log_dir / f"daemon-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd="/")
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.log_dir / f"daemon-{self.procs.index(proc)}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    d = Daemons(tmp_path)
    yield d
    d.stop_all()


def running(state: Path, proc: subprocess.Popen[bytes]) -> bool:
    """True once ``proc`` wrote its heartbeat in ``state`` (start-up is over)."""
    if proc.poll() is not None:
        raise AssertionError(f"the daemon exited early with code {proc.returncode}")
    try:
        return json.loads((state / "daemon.json").read_text()).get("pid") == proc.pid
    except (OSError, ValueError):
        return False


def done_lines(vault: Path) -> int:
    return (vault / "inbox.md").read_text().count("✅")


def starters(home: Path, vault: Path) -> dict[str, tuple[list[str], Env]]:
    return {
        "unit": as_unit(home, vault),
        "launchd": as_launchd(home, vault),
        "terminal": terminal(home, vault),
        # A shell where the user pointed the state elsewhere: another ledger folder, but
        # the same vault -- still one daemon.
        "terminal-other-state": terminal(home, vault,
                                         VAULTD_STATE_DIR=str(home / "elsewhere")),
        "terminal-xdg": terminal(home, vault, XDG_STATE_HOME=str(home / "xdg-state")),
    }


def test_the_service_and_the_terminal_share_one_ledger(tmp_path: Path,
                                                       daemons: Daemons) -> None:
    home = tmp_path / "home"
    home.mkdir()
    vault, lines = make_vault(tmp_path)
    unit_argv, unit_environ = as_unit(home, vault)
    shell = bare_env(home)
    assert state_dir_in(unit_environ, vault) == state_dir_in(shell, vault)
    service = daemons.start((unit_argv, unit_environ))
    wait_for(lambda: running(state_dir_in(shell, vault), service), timeout=60,
             what="the service's heartbeat where the terminal looks")
    append_in_place(vault / "inbox.md", "\n".join(lines) + "\n")
    wait_for(lambda: done_lines(vault) == 2, timeout=120, what="both lines done")
    st = status(shell, vault)  # `vaultd status` typed in a terminal
    assert st["daemon"] and st["daemon"]["pid"] == service.pid
    assert st["counts"]["done"] == 2
    # `vaultd regenerate` typed in the terminal reaches the service's job.
    key = f"file:Lectures/{TOPICS[0]}.srt"
    before = read_jobs(state_dir_in(shell, vault).parent)[key]["generated_at"]
    proc = vaultd_cli(shell, "regenerate", "--vault", str(vault), key)
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: (job := read_jobs(state_dir_in(shell, vault).parent)[key])["state"]
             == "done" and job["generated_at"] != before, timeout=120,
             what="the service regenerating the job the terminal asked for")


PAIRS = [("unit", "terminal"), ("terminal", "unit"), ("launchd", "terminal"),
         ("unit", "terminal-other-state"), ("terminal-xdg", "unit"),
         ("terminal", "launchd")]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_a_second_daemon_on_the_vault_refuses(tmp_path: Path, daemons: Daemons,
                                              first: str, second: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    vault, lines = make_vault(tmp_path, 1)
    how = starters(home, vault)
    one = daemons.start(how[first])
    wait_for(lambda: running(state_dir_in(how[first][1], vault), one), timeout=60,
             what=f"the {first} daemon running")
    two = daemons.start(how[second])
    try:
        code = two.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a second daemon ({second}) started on a vault the {first} daemon "
                    "already runs")
    out = daemons.log(two)
    assert code == 2, out
    assert "already running" in out and str(vault) in out
    assert f"pid {one.pid}" in out  # the user can find it
    assert "Traceback" not in out
    assert one.poll() is None  # the first one keeps working
    append_in_place(vault / "inbox.md", lines[0] + "\n")
    wait_for(lambda: done_lines(vault) == 1, timeout=120, what="the first daemon working")
    lock = vault / ".vaultd" / "daemon.lock"
    # One fixed line, written once: nothing for a sync client to copy again.
    assert lock.read_bytes() == LOCK_TEXT


def test_after_the_first_stops_the_second_starts(tmp_path: Path, daemons: Daemons) -> None:
    home = tmp_path / "home"
    home.mkdir()
    vault, _ = make_vault(tmp_path, 0)
    how = starters(home, vault)
    one = daemons.start(how["unit"])
    state = state_dir_in(how["unit"][1], vault)
    wait_for(lambda: running(state, one), timeout=60, what="the service running")
    one.send_signal(signal.SIGKILL)  # however it ended, its locks end with it
    one.wait(30)
    two = daemons.start(how["terminal"])
    wait_for(lambda: running(state, two), timeout=60, what="the terminal daemon running")


def _systemd_user_manager() -> str | None:
    """None when a systemd user manager answers here, else why not (the skip reason)."""
    if not shutil.which("systemctl"):
        return "no systemctl on this machine"
    try:
        proc = subprocess.run(["systemctl", "--user", "show-environment"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"systemctl --user failed: {exc}"
    if proc.returncode != 0:
        return ("no systemd user manager: `systemctl --user show-environment` says "
                f"{(proc.stderr or proc.stdout).strip()[:200]!r}")
    return None


def test_with_a_real_systemd_user_manager(tmp_path: Path, daemons: Daemons) -> None:
    why = _systemd_user_manager()
    if why:
        pytest.skip(why)
    vault, lines = make_vault(tmp_path, 1)
    shell = {k: v for k, v in os.environ.items()
             if k not in ("STATE_DIRECTORY", "VAULTD_STATE_DIR", "ANTHROPIC_API_KEY")}
    proc = vaultd_cli(shell, "service", "install", "--vault", str(vault))
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        state = state_dir_in(shell, vault)
        wait_for(lambda: status(shell, vault)["daemon"], timeout=120,
                 what="the service's heartbeat where the terminal looks")
        pid = status(shell, vault)["daemon"]["pid"]
        two = daemons.start(terminal(Path.home(), vault, **{
            k: v for k, v in shell.items() if k.startswith("XDG_")}))
        assert two.wait(60) == 2
        assert f"pid {pid}" in daemons.log(two)
        append_in_place(vault / "inbox.md", lines[0] + "\n")
        wait_for(lambda: status(shell, vault)["counts"]["done"] == 1, timeout=120,
                 what="the service's job in the terminal's status")
        assert (state / "ledger.sqlite3").exists()
    finally:
        vaultd_cli(shell, "service", "uninstall", "--vault", str(vault))
