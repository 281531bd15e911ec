"""``python -m tests.engine.scoring_signal_driver SIGNAL CALL RANK -- RUN_NET_ARGS``: tools/run_net.py,
with SIGNAL (a name, e.g. SIGUSR1) sent to this process by itself during the CALL-th gather of the
multi-view test (counted from 1; two gathers a batch: the scores, then the ids) when it is rank
RANK. The test-phase tests stop a test at a known batch this way, with a real signal."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import torch

from vov3d.cli.run_net import main
from vov3d.engine import evaluate


def send_at(name: str, call: int, rank: int) -> None:
    real = evaluate.all_gather_tensors
    calls = 0

    def counting(tensor: torch.Tensor) -> Any:
        nonlocal calls
        calls += 1
        if calls == call and int(os.environ.get("RANK", "0")) == rank:
            os.kill(os.getpid(), getattr(signal, name))
        return real(tensor)

    evaluate.all_gather_tensors = counting


if __name__ == "__main__":
    name, call, rank, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: scoring_signal_driver SIGNAL CALL RANK -- RUN_NET_ARGS"
    send_at(name, int(call), int(rank))
    sys.exit(main(argv))
