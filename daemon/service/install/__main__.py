"""``python -m daemon.service.install [DEST]``: regenerate the reference service files.

Writes ``vaultd.service`` and ``com.vaultd.agent.plist`` for the example vault into
DEST (default ``systemd``, run from the repository root) and prints their paths; the
tests fail when the copies in ``systemd/`` drift from what the renderers produce.
"""

import sys
from pathlib import Path

from daemon.service.install.units import write_examples


def main(argv: list[str]) -> None:
    for written in write_examples(Path(argv[1] if len(argv) > 1 else "systemd")):
        print(written)


if __name__ == "__main__":
    main(sys.argv)
