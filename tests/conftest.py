"""Test-wide settings: the Hypothesis profiles.

``ci`` (the default) makes every property test repeatable: the same examples on every
run (``derandomize``), no per-example deadline and no too-slow health check, because a
loaded 2-core CI box makes timings meaningless and a red build must mean a real bug
that the next run will show again. ``explore`` draws fresh random examples each run to
look for new bugs: ``HYPOTHESIS_PROFILE=explore .venv/bin/pytest``. The full fault
suite (``VAULTD_FAULTS_FULL=1``) always explores.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_RELAXED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, **_RELAXED)
settings.register_profile("explore", **_RELAXED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
