"""``python -m daemon.cli``: the same as the ``vaultd`` command.

Installed service units and launchd agents start vaultd this way
(:func:`daemon.service.install.units.default_exe`), so this path must keep working.
"""

import sys

from daemon.cli.commands import main

if __name__ == "__main__":  # not in spawned pool workers, which re-import this module
    sys.exit(main())
