"""``python -m daemon.service_install [DEST]``: see :mod:`daemon.service.install.__main__`."""

import sys

from daemon.service.install.__main__ import main

if __name__ == "__main__":
    main(sys.argv)
