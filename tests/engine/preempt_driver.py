"""``python -m tests.engine.preempt_driver SIGNAL CALL RANK [MODULE.FUNCTION] -- RUN_NET_ARGS``:
tools/run_net.py, with SIGNAL (a name, e.g. SIGTERM or SIGKILL) sent by this process to itself
during the CALL-th call (counted from 1 over the whole run) of FUNCTION, a name that MODULE calls
through its own namespace, when it is rank RANK. ``group:SIGTERM`` sends it to the process group
that this process then leads, its loader workers included, as SLURM signals every process of a
task. FUNCTION is by default the training loop's all-reduce
(``vov3d.engine.train.global_totals``: the signal comes during that iteration); the multi-view
test's gathers are ``vov3d.engine.evaluate.all_gather_tensors``, validation is
``vov3d.engine.train.validate_model``. The tests stop a run at a known point this way, with a real
signal, from outside the code under test."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any

from vov3d.cli.run_net import main

DEFAULT = "vov3d.engine.train.global_totals"


def send_at(name: str, call: int, rank: int, target: str = DEFAULT) -> None:
    group = name.startswith("group:")
    name = name.removeprefix("group:")
    if group:
        os.setpgid(0, 0)  # the loader workers started later join this group
    module_name, function = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    real = getattr(module, function)
    calls = 0

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call and int(os.environ.get("RANK", "0")) == rank:
            if group:
                os.killpg(os.getpgid(0), getattr(signal, name))
            else:
                os.kill(os.getpid(), getattr(signal, name))
        return real(*args, **kwargs)

    setattr(module, function, counting)


if __name__ == "__main__":
    split = sys.argv.index("--")
    name, call, rank, *target = sys.argv[1:split]
    send_at(name, int(call), int(rank), *target)
    sys.exit(main(sys.argv[split + 1 :]))
