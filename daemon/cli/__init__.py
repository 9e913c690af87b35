"""The face: argument parsing, output and exit codes (``vaultd …``).

Owns ``commands`` (the parser and every command), ``entry`` (the ``vaultd`` console
script), ``status`` (what ``vaultd status`` shows), ``demo`` and ``doctor/``.

May import every other room (``service``, ``writer``, ``jobs``, ``generate``,
``sources``), ``vault_tools`` and the shared modules; nothing outside ``daemon.cli``
imports it (import-linter contract "nothing but cli imports cli").
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """``daemon.cli:main``: the console script of installs made before the move.

    Kept because an installed ``vaultd`` script names this entry point until the package
    is reinstalled; new installs use :func:`daemon.cli.commands.main`.
    """
    from daemon.cli.commands import main as run

    return run(argv)
