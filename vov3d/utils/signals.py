"""Signal names from the config, and the loader workers' part in a stop: they ignore the stop
signals, which are the main process's to act on (``vov3d.engine.preemption``)."""

from __future__ import annotations

import signal
from collections.abc import Sequence


def signal_numbers(names: Sequence[str]) -> list[signal.Signals]:
    """``["SIGUSR1", "TERM"]`` -> the signals; raises ValueError naming an unknown or uncatchable one."""
    numbers = []
    for name in names:
        full = name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"
        number = getattr(signal.Signals, full, None)
        if number is None or number in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError(f"{name!r} is not a signal a run can catch (e.g. SIGUSR1, SIGTERM, SIGINT)")
        numbers.append(number)
    return numbers


def ignore_signals(numbers: Sequence[int], _worker_id: int = 0) -> None:
    """A loader worker's ``worker_init_fn`` (with ``functools.partial``): ignore ``numbers``.

    SLURM (preemption, the time limit, scancel) signals every process of a task, loader workers
    included. torch's own SIGTERM handler in a worker dies of a signal that its parent did not
    send, and the main process then fails with "DataLoader worker ... is killed by signal"
    instead of stopping in step. Ignoring them, a worker goes on serving batches until the main
    process shuts the loader down (or dies: torch's watchdog ends the worker then)."""
    for number in numbers:
        signal.signal(number, signal.SIG_IGN)
