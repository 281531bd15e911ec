"""Small measuring tools of the training and testing loops: windowed averages, timers, the ETA,
top-k correctness and memory use."""

from __future__ import annotations

import datetime
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import torch

try:  # not on Windows
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]


class WindowAverage:
    """Average of the last ``window`` values (what a log line reports) and of all of them (what
    the epoch summary reports), each value weighted by its count (e.g. a batch size)."""

    def __init__(self, window: int) -> None:
        self._recent: deque[tuple[float, float]] = deque(maxlen=max(window, 1))
        self.total = 0.0
        self.count = 0.0

    def update(self, value: float, count: float = 1.0) -> None:
        self._recent.append((value * count, count))
        self.total += value * count
        self.count += count

    def state_dict(self) -> dict[str, Any]:
        """What a mid-epoch checkpoint keeps, so the resumed epoch logs the lines of an uninterrupted one."""
        return {"recent": [list(pair) for pair in self._recent], "total": self.total, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._recent.clear()
        self._recent.extend((float(v), float(c)) for v, c in state["recent"])
        self.total, self.count = float(state["total"]), float(state["count"])

    @property
    def window_average(self) -> float:
        count = sum(c for _, c in self._recent)
        return sum(v for v, _ in self._recent) / count if count else 0.0

    @property
    def global_average(self) -> float:
        return self.total / self.count if self.count else 0.0


class Timer:
    """Seconds since the last ``reset``; on a GPU, ``synchronize`` first so that the time covers
    the queued kernels, not just their launch."""

    def __init__(self, synchronize: bool = False) -> None:
        self.synchronize = synchronize
        self.reset()

    def reset(self) -> None:
        self._start = time.perf_counter()

    def seconds(self) -> float:
        if self.synchronize:
            torch.cuda.synchronize()
        return time.perf_counter() - self._start


def format_eta(seconds: float) -> str:
    """``H:MM:SS``, as PySlowFast's json_stats lines write it."""
    return str(datetime.timedelta(seconds=int(max(seconds, 0.0))))


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[torch.Tensor]:
    """For each k, a bool tensor (N,) saying whether the label is among the k highest scores.

    k is capped at the number of classes, so top-5 of a 3-class problem is always correct.
    """
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hits = top == labels.view(-1, 1)
    return [hits[:, : min(k, scores.shape[1])].any(dim=1) for k in ks]


def memory_mib(device: torch.device) -> int:
    """Peak memory of this process in MiB: allocated GPU memory on a GPU, resident memory on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device) / 2**20)
    if resource is None:  # pragma: no cover
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(peak / (2**20 if sys.platform == "darwin" else 2**10))
