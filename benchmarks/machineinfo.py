"""The CPU line every benchmark prints beside its results (no other dependencies, so the
PDF and graph benchmarks can use it without loading the service stand-ins)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The model name /proc/cpuinfo gives, else what the platform says, else "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
