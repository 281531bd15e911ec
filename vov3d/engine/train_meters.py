"""The statistics of a training epoch: running averages of loss, errors and times, and the
``train_iter`` / ``train_epoch`` lines made from them (PySlowFast's json_stats fields)."""

from __future__ import annotations

from typing import Any

import torch

from vov3d.utils.meters import WindowAverage, format_eta, memory_mib

METERS = ("loss", "top1_err", "top5_err", "dt_data", "dt_net")


class TrainMeters:
    """Averages over the last ``window`` iterations (a ``train_iter`` line) and over the epoch (the
    ``train_epoch`` line) of epoch ``epoch`` (from 0) of ``max_epoch``, ``iters`` iterations long;
    ``device`` is whose peak memory the lines report."""

    def __init__(self, window: int, epoch: int, max_epoch: int, iters: int, device: torch.device) -> None:
        self.meters = {name: WindowAverage(window) for name in METERS}
        self.epoch, self.max_epoch, self.iters, self.device = epoch, max_epoch, iters, device

    def state_dict(self) -> dict[str, Any]:
        """The running averages, for a mid-epoch checkpoint."""
        return {name: meter.state_dict() for name, meter in self.meters.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, meter in self.meters.items():
            meter.load_state_dict(state[name])

    def times(self, data_seconds: float, net_seconds: float) -> None:
        """Seconds waiting for the batch and computing on it."""
        self.meters["dt_data"].update(data_seconds)
        self.meters["dt_net"].update(net_seconds)

    def update(self, loss_sum: float, correct1: float, correct5: float, total: float) -> None:
        """A batch's summed loss and top-1 / top-5 hits over ``total`` clips (all processes)."""
        self.meters["loss"].update(loss_sum / total, total)
        self.meters["top1_err"].update(100.0 * (1 - correct1 / total), total)
        self.meters["top5_err"].update(100.0 * (1 - correct5 / total), total)

    def iteration_stats(self, it: int, lr: float) -> dict[str, Any]:
        """The ``train_iter`` line after iteration ``it`` (from 0); the ETA counts the epochs left."""
        remaining = self.iters - it - 1 + (self.max_epoch - self.epoch - 1) * self.iters
        return {
            "_type": "train_iter",
            "epoch": self._epoch(),
            "iter": f"{it + 1}/{self.iters}",
            "lr": lr,
            **{name: meter.window_average for name, meter in self.meters.items()},
            "eta": format_eta(self._iteration_time(window=True) * remaining),
            "mem": memory_mib(self.device),
        }

    def epoch_stats(self, lr: float) -> dict[str, Any]:
        """The ``train_epoch`` line: averages over the whole epoch."""
        remaining = (self.max_epoch - self.epoch - 1) * self.iters
        return {
            "_type": "train_epoch",
            "epoch": self._epoch(),
            "lr": lr,
            **{name: meter.global_average for name, meter in self.meters.items()},
            "eta": format_eta(self._iteration_time(window=False) * remaining),
            "mem": memory_mib(self.device),
        }

    def _epoch(self) -> str:
        return f"{self.epoch + 1}/{self.max_epoch}"

    def _iteration_time(self, window: bool) -> float:
        meters = (self.meters["dt_data"], self.meters["dt_net"])
        return sum(m.window_average if window else m.global_average for m in meters)
