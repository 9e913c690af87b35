"""Old home of :mod:`daemon.service.install`, kept for ``python -m daemon.service_install``.

That command (regenerate the reference unit and plist in ``systemd/``) is in notes and
scripts outside this package; it runs :mod:`daemon.service.install.__main__`. Import
from :mod:`daemon.service.install`.
"""
