"""Loader workers and the stop signals (TRAIN.STOP_SIGNALS): the main process acts on them and
stops the run in step (``vov3d.engine.preemption``); a worker must serve on meanwhile.

SLURM (preemption, the time limit, scancel) signals every process of a task, loader workers
included. torch's SIGTERM handler in a worker dies of a SIGTERM its parent did not send, and the
main process then fails ("DataLoader worker ... is killed by signal") instead of stopping in step.
So a worker ignores the stop signals, except one SIGTERM once the main process is leaving: at
exit, multiprocessing ends the workers still alive with SIGTERM and waits for them, which must
not wait for ever.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
from collections.abc import Sequence
from types import FrameType
from typing import Optional


class WorkerStopSignals:
    """A DataLoader's ``worker_init_fn``: in each worker, ``numbers`` do nothing until the process
    that made this object is leaving (its exit, flagged in shared memory that the workers inherit);
    a SIGTERM then ends the worker at once."""

    def __init__(self, numbers: Sequence[int]) -> None:
        self.numbers = [int(number) for number in numbers]
        self.leaving = multiprocessing.RawValue("b", 0)
        atexit.register(self.leave)  # runs before multiprocessing's own exit handler, registered earlier

    def leave(self) -> None:
        """The main process is exiting: a SIGTERM now ends the workers."""
        self.leaving.value = 1

    def __call__(self, _worker_id: int) -> None:
        for number in self.numbers:
            signal.signal(number, self._handle)

    def _handle(self, number: int, _frame: Optional[FrameType]) -> None:
        if number == signal.SIGTERM and self.leaving.value:
            os._exit(0)
