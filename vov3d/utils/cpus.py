"""How many CPU cores this process may use: the affinity mask where the OS has one (containers
and SLURM restrict it), else the machine's count."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """Cores this process may run on (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
