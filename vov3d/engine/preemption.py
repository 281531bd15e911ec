"""Stopping a run in step: signals that ask for a stop, a clock for periodic mid-epoch
checkpoints, and SLURM's requeue.

A signal handler only sets a flag. The training loop adds this process's flag (and rank 0's
"a periodic checkpoint is due") to the all-reduce that already sums the loss every iteration, so
every rank learns both at the same iteration without another collective; rank 0 then writes a
checkpoint and every rank leaves with ``PREEMPTED_EXIT_CODE``. A second signal while the checkpoint
is written only sets the flag again: checkpoints are written atomically, so nothing is corrupted.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import FrameType
from typing import Any, Callable, Optional

import torch

from vov3d.config import CfgNode
from vov3d.config.validation import signal_numbers
from vov3d.utils.distributed import all_reduce_sum, is_main_process

logger = logging.getLogger(__name__)

# sysexits.h's EX_TEMPFAIL ("try again later"): the run stopped on a signal after saving a
# checkpoint, and the same command resumes it. 1 is an error, 2 a config or launch error, 3 a lost
# process (launch.LOST_RANK_EXIT).
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
    """The run stopped on a signal after writing its checkpoint (exit code PREEMPTED_EXIT_CODE);
    the message says by what, where and what was kept, e.g. "stopped by SIGUSR1 (epoch 3/256,
    iteration 120/3750); checkpoint written, the same command resumes"."""


class StopSignals:
    """While installed (a context manager), the given signals set ``received`` instead of killing
    the process; leaving restores the handlers that were there before."""

    def __init__(self, signals: Sequence[signal.Signals]) -> None:
        self.signals = list(signals)
        self.received: Optional[str] = None  # the first signal's name
        self._previous: dict[signal.Signals, Any] = {}

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> StopSignals:
        """TRAIN.STOP_SIGNALS (checked when the config was loaded)."""
        return cls(signal_numbers(cfg.TRAIN.STOP_SIGNALS))

    def _handle(self, number: int, _frame: Optional[FrameType]) -> None:
        if self.received is None:
            self.received = signal.Signals(number).name

    def __enter__(self) -> StopSignals:
        for number in self.signals:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


def installed(signals: Optional[StopSignals], cfg: CfgNode) -> AbstractContextManager[StopSignals]:
    """``signals`` as they are when the caller installed them, else TRAIN.STOP_SIGNALS installed
    for the block."""
    return nullcontext(signals) if signals is not None else StopSignals.from_cfg(cfg)


@contextmanager
def forward_signals(numbers: Sequence[int], processes: Sequence[Any]) -> Iterator[None]:
    """While open, the signals ``numbers`` that reach this process (a launcher that spawned the
    run's ``processes``, e.g. under ``kill``, ``docker stop`` or Kubernetes) are sent on to those
    still alive, which stop in step; this process goes on waiting for them."""

    def forward(number: int, _frame: Optional[FrameType]) -> None:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, number)

    previous = {number: signal.signal(number, forward) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class StopControl:
    """What the training loop asks every iteration: this process's stop and checkpoint flags for
    the all-reduce, then the decision from their sums (the same on every rank).

    ``checkpoint_minutes`` (TRAIN.CHECKPOINT_MINUTES; 0: never) is read on rank 0's clock only,
    from the start of the run or its last checkpoint."""

    def __init__(
        self,
        signals: StopSignals,
        checkpoint_minutes: float,
        main_process: bool,
        device: torch.device,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signals = signals
        self.device = device  # where the all-reduce's tensor lives (NCCL: the GPU)
        self.period = checkpoint_minutes * 60.0
        self.main_process = main_process
        self.clock = clock
        self.last_checkpoint = clock()
        self.stopping = False  # every rank agreed to stop

    def flags(self) -> tuple[float, float]:
        """(this process received a stop signal, a periodic checkpoint is due on rank 0's clock)."""
        due = self.main_process and self.period > 0 and self.clock() - self.last_checkpoint >= self.period
        return float(self.signals.received is not None), float(due)

    def decide(self, stop_sum: float, checkpoint_sum: float) -> tuple[bool, bool]:
        """(stop now, write a checkpoint now) from the flags summed over all processes."""
        self.stopping = self.stopping or stop_sum > 0
        return self.stopping, self.stopping or checkpoint_sum > 0

    def agree(self) -> bool:
        """Whether any process received a stop signal: one all-reduce, at an epoch's end (a signal
        during precise BN or validation, which carry no per-iteration flags)."""
        stop = torch.tensor([self.flags()[0]], device=self.device)
        self.stopping = self.stopping or all_reduce_sum(stop).item() > 0
        return self.stopping

    def checkpointed(self) -> None:
        """A checkpoint was just written: the periodic clock starts again."""
        self.last_checkpoint = self.clock()


def leave(signals: StopSignals, stop: Preempted, outcome: str) -> Preempted:
    """Log why and where the run stopped and what it kept (``outcome``), requeue a SLURM job from
    rank 0, and return the Preempted to raise, whose message says it all."""
    stopped = Preempted(f"stopped by {signals.received or 'another process'} ({stop}); {outcome}")
    logger.warning("%s", stopped)
    if is_main_process():
        requeue_slurm_job()
    return stopped


def requeue_slurm_job(
    environ: Optional[Mapping[str, str]] = None, run: Callable[..., Any] = subprocess.run
) -> Optional[bool]:
    """``scontrol requeue $SLURM_JOB_ID`` when this is a SLURM job and scontrol is on PATH: the job
    goes back to the queue and, started again, resumes from the checkpoint. Returns None when not
    under SLURM, else whether scontrol accepted it (a job submitted without ``--requeue`` is not)."""
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID")
    scontrol = shutil.which("scontrol", path=env.get("PATH"))
    if not job or scontrol is None:
        return None
    command = [scontrol, "requeue", job]
    try:
        result = run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        logger.warning("could not requeue SLURM job %s (%s): %s", job, " ".join(command), e)
        return False
    if result.returncode != 0:
        logger.warning(
            "scontrol did not requeue SLURM job %s (submit it with sbatch --requeue): %s",
            job,
            (result.stderr or result.stdout or "").strip(),
        )
        return False
    logger.info("requeued SLURM job %s: it resumes from the checkpoint when it starts again", job)
    return True
