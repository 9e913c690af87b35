"""Rendering the service files: the systemd user unit and the launchd agent plist.

The renderers are pure (they read only ``HOME``, for the default launchd log folder),
so the tests can render for any vault; ``write_examples`` is the one writer, for the
reference copies in ``systemd/``. What a rendering promises: absolute interpreter and
vault paths, never a PATH lookup; per-vault names from :func:`unit_instance`; and no
secret in the file -- the unit reads the API key from an ``EnvironmentFile`` or
``LoadCredential=``, the plist relies on ``generate.api_key_file``.

A unit file is not a shell script: paths are quoted and ``%``/``$`` escaped the systemd
way, and a path a unit cannot carry safely (quote, backslash, control character) is a
:class:`ServiceInstallError` rather than a unit that runs something else. The timing
constants are tied to the daemon: it pings the watchdog at least every
``WATCHDOG_SEC / 2`` and drains within ``STOP_TIMEOUT_SEC``.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import sys
from pathlib import Path

from daemon.errors import VaultdError

WATCHDOG_SEC = 120  # the main loop must ping at least every WATCHDOG_SEC / 2
STOP_TIMEOUT_SEC = 180  # drain deadline must be shorter (SIGKILL follows at this point)
START_TIMEOUT_SEC = 300  # ledger recovery on a large ledger; READY=1 ends it
RESTART_SEC = 10
START_LIMIT_INTERVAL_SEC = 600
START_LIMIT_BURST = 5
THROTTLE_INTERVAL = 30  # launchd: least seconds between restarts
LABEL_PREFIX = "com.vaultd.agent."

EXAMPLE_VAULT = Path("/home/you/Obsidian/Notes")
EXAMPLE_EXE = ["/home/you/.local/bin/vaultd"]
EXAMPLE_HOME = Path("/Users/you")


class ServiceInstallError(VaultdError):
    """The service cannot be rendered or installed here (platform, odd vault path)."""


def default_exe() -> list[str]:
    """The command that starts vaultd here: this interpreter, absolute, not resolved.

    Not resolved because a virtualenv's ``python`` is a symlink whose target would lose
    the venv. ``-P`` keeps the working directory off ``sys.path``, so a ``daemon/``
    folder in the home or vault can never shadow the package.
    """
    return [str(Path(sys.executable).absolute()), "-P", "-m", "daemon.cli"]


def unit_instance(vault: Path) -> str:
    """Stable, safe per-vault name: ``<slug of folder name>-<8 hex of the path hash>``.

    Pure: pass the resolved absolute vault path (``install`` and friends do).
    """
    path = _absolute(vault)
    slug = re.sub(r"[^a-z0-9]+", "-", path.name.lower()).strip("-")[:32].strip("-")
    digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{slug or 'vault'}-{digest}"


def unit_name(vault: Path) -> str:
    return f"vaultd-{unit_instance(vault)}.service"


def launchd_label(vault: Path) -> str:
    return LABEL_PREFIX + unit_instance(vault)


def render_systemd_unit(
    vault: Path,
    *,
    exe: list[str],
    instance: str,
    sandbox: bool = True,
    credential_file: Path | None = None,
) -> str:
    """The user unit for one vault.

    ``credential_file``: pass the API key with ``LoadCredential=`` instead of the
    environment; the daemon then reads ``$CREDENTIALS_DIRECTORY/anthropic-api-key``.
    ``sandbox=False`` drops the namespace-based hardening for systems where unprivileged
    user namespaces are disabled (the unit then fails to start with status 218/226).
    """
    vault = _absolute(vault)
    _check_instance(instance)
    if not exe or not all(Path(w).is_absolute() for w in exe[:1]):
        raise ServiceInstallError("the service command must start with an absolute path")
    argv = [*exe, "run", "--vault", str(vault)]
    exec_start = " ".join(_exec_word(w) for w in argv)
    lines = [
        f"# vaultd for the vault {_spec(_check_path(vault))}",
        "# Rendered by `vaultd service install`; run it again after moving the vault or",
        "# reinstalling vaultd. The API key goes in ~/.config/vaultd/env (chmod 600):",
        "#   ANTHROPIC_API_KEY=sk-ant-...",
        "",
        "[Unit]",
        f"Description=vaultd study notes for {_spec(str(vault))}",
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL_SEC}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        f"WatchdogSec={WATCHDOG_SEC}",
        f"TimeoutStartSec={START_TIMEOUT_SEC}",
        "# SIGTERM to the main process only; the pool workers finish while it drains.",
        "KillMode=mixed",
        f"TimeoutStopSec={STOP_TIMEOUT_SEC}",
        "Environment=PYTHONUNBUFFERED=1",
        f"Environment=XDG_CACHE_HOME=%C/vaultd/{instance}",
        "EnvironmentFile=-%E/vaultd/env",
        f"EnvironmentFile=-%E/vaultd/{instance}.env",
    ]
    if credential_file is not None:
        lines.append(f"LoadCredential=anthropic-api-key:{_path_word(_absolute(credential_file))}")
    lines += [
        # The shared base, not a per-vault folder: $STATE_DIRECTORY is then %S/vaultd,
        # the base a terminal `vaultd` uses too, and daemon/paths.py nests the same
        # per-vault folder in it -- one ledger per vault, whoever runs the command.
        "StateDirectory=vaultd",
        "StateDirectoryMode=0700",
        f"CacheDirectory=vaultd/{instance}",
        "NoNewPrivileges=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
    ]
    if sandbox:
        lines += [
            "# File system: read-only except the vault, $STATE_DIRECTORY and the cache.",
            "ProtectSystem=strict",
            "ProtectHome=read-only",
            f"ReadWritePaths=-{_path_word(vault)}",
            "PrivateTmp=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "ProtectKernelLogs=yes",
            "ProtectHostname=yes",
            "RestrictNamespaces=yes",
        ]
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def render_launchd_plist(
    vault: Path, *, exe: list[str], label: str, log_dir: Path | None = None
) -> bytes:
    """The launchd agent for one vault (XML plist bytes).

    launchd has no EnvironmentFile: the API key comes from ``generate.api_key_file`` in
    the vault's config (a 0600 file), never from the plist.
    """
    vault = _absolute(vault)
    _check_instance(label.removeprefix(LABEL_PREFIX))
    if not exe or not Path(exe[0]).is_absolute():
        raise ServiceInstallError("the service command must start with an absolute path")
    logs = log_dir if log_dir is not None else user_home() / "Library" / "Logs" / "vaultd"
    log_file = str(logs / f"{label.removeprefix(LABEL_PREFIX)}.log")
    plist = {
        "Label": label,
        "ProgramArguments": [*exe, "run", "--vault", str(vault)],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": THROTTLE_INTERVAL,
        "ExitTimeOut": STOP_TIMEOUT_SEC,
        "ProcessType": "Background",
        "StandardOutPath": log_file,
        "StandardErrorPath": log_file,
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
    }
    return plistlib.dumps(plist, fmt=plistlib.FMT_XML)


def write_examples(dest: Path) -> list[Path]:
    """Regenerate the reference copies in ``systemd/`` from the renderers."""
    unit = dest / "vaultd.service"
    unit.write_text(render_systemd_unit(EXAMPLE_VAULT, exe=EXAMPLE_EXE,
                                        instance=unit_instance(EXAMPLE_VAULT)),
                    encoding="utf-8")
    plist = dest / "com.vaultd.agent.plist"
    plist.write_bytes(render_launchd_plist(
        Path("/Users/you/Obsidian/Notes"), exe=["/Users/you/.local/bin/vaultd"],
        label=launchd_label(Path("/Users/you/Obsidian/Notes")),
        log_dir=EXAMPLE_HOME / "Library" / "Logs" / "vaultd"))
    return [unit, plist]


def user_home() -> Path:
    """``$HOME`` when set (the tests point it at a temp folder), else the account's home."""
    home = os.environ.get("HOME")
    return Path(home) if home else Path.home()


# -- quoting for unit files ----------------------------------------------------------

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')


def _check_path(path: Path) -> str:
    text = str(path)
    if _UNSAFE.search(text):
        raise ServiceInstallError(
            f"the path {text!r} holds a quote, backslash or control character, which a "
            "unit file cannot carry safely; move or rename the folder")
    return text


def _spec(text: str) -> str:
    """Escape systemd specifiers (``%``)."""
    return text.replace("%", "%%")


def _exec_word(word: str) -> str:
    _check_path(Path(word))
    text = _spec(word).replace("$", "$$")
    return text if _PLAIN_WORD.fullmatch(word) else f'"{text}"'


def _path_word(path: Path) -> str:
    text = _spec(_check_path(path))
    return text if _PLAIN_WORD.fullmatch(str(path)) else f'"{text}"'


def _check_instance(instance: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", instance):
        raise ServiceInstallError(f"bad service instance name {instance!r}")


def _absolute(path: Path) -> Path:
    if not path.is_absolute():
        raise ServiceInstallError(f"{path} is not an absolute path")
    return path
