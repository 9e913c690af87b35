"""The ``vaultd`` console script: start the worker fork server first, then the CLI.

Importing :mod:`daemon.cli` takes the daemon's whole import graph (runner, writer,
graph keeper with networkx, ...): 0.5-1.5 s on a 2-core machine. For ``vaultd run``
the worker fork server (:mod:`daemon.warmstart`) is started *before* that, from this
small module, so the fork server's imports (the anthropic SDK, the heaviest) overlap
the daemon's own start-up on the other core instead of following it. Because the
fork server preloads ``__main__`` (the console script, which imports only this
module), workers never import the CLI at all.

Which backend the workers need is guessed the way ``runner.resolve_backend`` decides
(config ``generate.backend``, else a key in the environment or the key file); a wrong
guess or any error here only loses the head start: the daemon decides for itself
later, and a worker imports what it lacks on first use.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _vault_arg(argv: list[str]) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == "--vault" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--vault="):
            return Path(arg.split("=", 1)[1])
    return None


def guess_backend(vault: Path) -> str:
    from daemon.config import load_config
    from daemon.secrets import load_api_key

    gen = load_config(vault).section("generate")
    if gen["backend"] != "auto":
        return str(gen["backend"])
    return "claude" if load_api_key(gen) is not None else "offline"


def start_workers_early(argv: list[str]) -> None:
    """For ``vaultd run`` (not ``--batch``, which runs no pool): the fork server now."""
    if argv[:1] != ["run"] or "--batch" in argv or "-h" in argv or "--help" in argv:
        return
    vault = _vault_arg(argv)
    if vault is None or not vault.is_dir():
        return
    try:
        from daemon.warmstart import start_early

        start_early(guess_backend(vault))
    except Exception:  # noqa: BLE001, S110 - a head start only; the daemon reports errors
        pass


def main() -> int:
    start_workers_early(sys.argv[1:])
    from daemon.cli import main as cli_main

    return cli_main()
