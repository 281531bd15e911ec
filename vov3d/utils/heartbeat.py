"""Which peers of a process group are still there: a heartbeat in the rendezvous store, read only
after a collective failed (``vov3d.utils.distributed.roll_call``), so that a survivor names the
lost rank instead of a backend's traceback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, TypeVar

import torch.distributed as dist

# Every process adds 1 to its counter in the rendezvous store this often (a daemon thread); a peer
# whose counter stands still for LOST_AFTER_BEATS periods is lost (killed, out of memory, node gone).
HEARTBEAT_SECONDS = 1.0
LOST_AFTER_BEATS = 3
# How long a roll call waits for the store's answer before taking its host for gone: a store
# request to a stopped or unreachable host waits for ever, whatever the store's timeout.
STORE_REPLY_SECONDS = 10.0

T = TypeVar("T")


@dataclass(frozen=True)
class RollCall:
    """The peers that stopped beating: ``lost`` ones stopped answering, ``left`` ones ended on their
    own (an error they reported themselves). ``store_gone``: the store itself did not answer."""

    lost: list[int]
    left: list[int]
    store_gone: bool = False

    def describe(self) -> Optional[str]:
        """What happened, in a reader's words; None when every peer still beats."""
        if self.store_gone:
            agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
            host = "torchrun's agent" if agent else "rank 0"
            return f"{host} (which hosts the rendezvous) is gone"
        if self.lost:
            ranks, its, processes = _ranks(self.lost)
            return f"lost {ranks} ({its} {processes} stopped answering during a collective)"
        if self.left:
            ranks, its, _ = _ranks(self.left)
            return f"{ranks} stopped on an error of {its} own (see {its} output)"
        return None


def _ranks(ranks: list[int]) -> tuple[str, str, str]:
    """("rank 1", "its", "process") or ("ranks 1, 2", "their", "processes")."""
    if len(ranks) == 1:
        return f"rank {ranks[0]}", "its", "process"
    return "ranks " + ", ".join(map(str, ranks)), "their", "processes"


class Heartbeat:
    """This process adds 1 to its counter in ``store`` every ``period`` seconds from a daemon thread:
    nothing is added to an iteration, and it beats on while the main thread computes, writes a
    checkpoint or waits in a collective. ``roll_call`` tells the peers that stopped answering from
    those that left on their own (``stop`` marks them)."""

    def __init__(self, store: dist.Store, rank: int, world_size: int, period: float = HEARTBEAT_SECONDS) -> None:
        self._store = dist.PrefixStore("vov3d/heartbeat", store)
        self.rank, self.world_size, self.period = rank, world_size, period
        self._stopping = threading.Event()
        self._store_gone = False  # once a request failed, none is sent again (each failure prints a C++ warning)
        self._store.add(f"beats/{rank}", 1)
        self._thread = threading.Thread(target=self._beat, name="vov3d-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopping.wait(self.period):
            try:
                self._store.add(f"beats/{self.rank}", 1)
            except RuntimeError:  # the store's host is gone; roll_call says so
                self._store_gone = True
                return

    def stop(self) -> None:
        """Stop beating and mark this process as having left on its own, so no peer counts it lost."""
        self._stopping.set()
        self._thread.join(timeout=self.period)  # at once, unless a request to a hung store holds it
        self._ask(lambda: self._store.set(f"left/{self.rank}", "1"))

    def roll_call(self) -> RollCall:
        """The peers whose counters stood still for LOST_AFTER_BEATS periods (a few seconds)."""
        silent = self._silent_peers()
        left = None if silent is None else self._ask(lambda: [r for r in silent if self._store.check([f"left/{r}"])])
        if silent is None or left is None:
            return RollCall([], [], store_gone=True)
        return RollCall([r for r in silent if r not in left], left)

    def _silent_peers(self) -> Optional[list[int]]:
        before = self._ask(self._counts)
        if before is None:
            return None
        time.sleep(LOST_AFTER_BEATS * self.period)
        after = self._ask(self._counts)
        if after is None:
            return None
        return [r for r in range(self.world_size) if r != self.rank and after[r] == before[r]]

    def _counts(self) -> list[int]:
        return [self._store.add(f"beats/{r}", 0) for r in range(self.world_size)]

    def _ask(self, request: Callable[[], T]) -> Optional[T]:
        """``request``'s answer, or None when the store failed or did not answer within
        STORE_REPLY_SECONDS (then it is taken for gone and never asked again)."""
        answer: list[T] = []

        def ask() -> None:
            try:
                answer.append(request())
            except RuntimeError:
                pass

        if not self._store_gone:
            thread = threading.Thread(target=ask, name="vov3d-store-request", daemon=True)
            thread.start()
            thread.join(timeout=STORE_REPLY_SECONDS)
        if not answer:
            self._store_gone = True  # only ever set: the beat thread may have set it already
        return answer[0] if answer else None
