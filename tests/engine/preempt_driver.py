"""``python -m tests.engine.preempt_driver SIGNAL CALL RANK -- RUN_NET_ARGS``: tools/run_net.py,
with SIGNAL (a name, e.g. SIGTERM or SIGKILL) sent to this process by itself just before the
CALL-th training iteration's all-reduce (counted from 1 over the whole run) when it is rank RANK.
The tests stop a run at a known iteration this way, with a real signal, from outside the code
under test."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from vov3d.cli.run_net import main
from vov3d.engine import train


def send_at(name: str, call: int, rank: int) -> None:
    real = train.global_totals
    calls = 0

    def counting(*args: Any, **kwargs: Any) -> list[float]:
        nonlocal calls
        calls += 1
        if calls == call and int(os.environ.get("RANK", "0")) == rank:
            os.kill(os.getpid(), getattr(signal, name))
        return real(*args, **kwargs)

    train.global_totals = counting


if __name__ == "__main__":
    name, call, rank, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: preempt_driver SIGNAL CALL RANK -- RUN_NET_ARGS"
    send_at(name, int(call), int(rank))
    sys.exit(main(argv))
