"""vov3d.utils.distributed: the SLURM helpers (node lists and task counts as SLURM writes them), and
the heartbeats that name a lost peer (in one process, on a store shared by several heartbeats)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import torch.distributed as dist

from vov3d.utils import heartbeat as heartbeat_module
from vov3d.utils.distributed import expand_nodelist, free_port, tasks_on_node
from vov3d.utils.heartbeat import Heartbeat, RollCall


@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("a[01-03,07]", ["a01", "a02", "a03", "a07"]),
        ("b1,c2", ["b1", "c2"]),
        ("gpu-[1-2]-[a,b]", ["gpu-1-a", "gpu-1-b", "gpu-2-a", "gpu-2-b"]),
        ("node[8-10],login", ["node8", "node9", "node10", "login"]),
    ],
)
def test_slurm_node_lists(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


def test_slurm_tasks_per_node() -> None:
    assert [tasks_on_node("8(x2),4", node) for node in range(3)] == [8, 8, 4]


def test_roll_call_tells_lost_peers_from_those_that_left() -> None:
    """A peer that beat once and went silent is lost; one that stopped (``stop``) left on its own."""
    store = dist.HashStore()
    me = Heartbeat(store, 0, 3, period=0.1)
    alive, silent = Heartbeat(store, 1, 3, period=0.1), Heartbeat(store, 2, 3, period=3600.0)
    try:
        roll = me.roll_call()
        assert roll == RollCall(lost=[2], left=[])
        assert roll.describe() == "lost rank 2 (its process stopped answering during a collective)"
        alive.stop()
        roll = me.roll_call()
        assert roll == RollCall(lost=[2], left=[1])
        silent.stop()
        roll = me.roll_call()
        assert roll == RollCall(lost=[], left=[1, 2])
        assert roll.describe() == "ranks 1, 2 stopped on an error of their own (see their output)"
        lost = RollCall(lost=[1, 3], left=[]).describe()
        assert lost == "lost ranks 1, 3 (their processes stopped answering during a collective)"
    finally:
        for heartbeat in (me, alive, silent):
            heartbeat.stop()


def test_roll_call_when_every_peer_beats() -> None:
    store = dist.HashStore()
    beats = [Heartbeat(store, rank, 2, period=0.1) for rank in range(2)]
    try:
        roll = beats[1].roll_call()
        assert roll == RollCall(lost=[], left=[]) and roll.describe() is None
    finally:
        for heartbeat in beats:
            heartbeat.stop()


@pytest.fixture
def store_host() -> Iterator[tuple[subprocess.Popen, dist.TCPStore]]:
    """A TCPStore served by another process (as rank 0 serves it), and a client of it."""
    port = free_port()
    serve = (
        f"import torch.distributed as d, time; s = d.TCPStore('127.0.0.1', {port}, None, True); "
        "print('up', flush=True); time.sleep(300)"
    )
    host = subprocess.Popen([sys.executable, "-c", serve], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None and host.stdout.readline().strip() == "up"
        yield host, dist.TCPStore("127.0.0.1", port, None, False, timeout=timedelta(seconds=30))
    finally:
        host.kill()
        host.wait()


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_roll_call_says_the_store_is_gone(
    store_host: tuple[subprocess.Popen, dist.TCPStore], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its host killed, or stopped (a request would wait for ever): gone within STORE_REPLY_SECONDS."""
    host, store = store_host
    monkeypatch.setattr(heartbeat_module, "STORE_REPLY_SECONDS", 1.0)
    heartbeat = Heartbeat(store, 1, 2, period=0.1)
    host.send_signal(signal.SIGKILL if how == "killed" else signal.SIGSTOP)
    started = time.monotonic()
    roll = heartbeat.roll_call()
    assert time.monotonic() - started < 5.0
    assert roll == RollCall(lost=[], left=[], store_gone=True)
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    assert roll.describe() == "rank 0 (which hosts the rendezvous) is gone"
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    assert roll.describe() == "torchrun's agent (which hosts the rendezvous) is gone"
    heartbeat.stop()  # sends nothing more: it returns at once
    assert time.monotonic() - started < 6.0
