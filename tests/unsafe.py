"""Checkpoint files for the safety tests: one whose pickle would write a marker file when loaded
unsafely, and ones holding NumPy values as files pickled under NumPy 1 (old PySlowFast) do."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch


class _WritesMarker:
    """Unpickled without ``weights_only``, this runs ``open(marker, "w").write(...)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"open({self.marker!r}, 'w').write('the pickle ran')",)


def malicious_checkpoint(path: Path, marker: Path, state: dict[str, torch.Tensor] | None = None) -> Path:
    """A file in PySlowFast's layout with a payload beside the weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = state if state is not None else {"w": torch.zeros(1)}
    torch.save({"epoch": 0, "model_state": state, "cfg": "", "payload": _WritesMarker(marker)}, path)
    return path


class _NumPy1Pickler(pickle._Pickler):
    """Writes NumPy 2's ``numpy._core`` globals under NumPy 1's name ``numpy.core``."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "")
        if not module.startswith("numpy._core"):
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + f"{module.replace('numpy._core', 'numpy.core')}\n{name or obj.__name__}\n".encode())
        self.memoize(obj)


class _NumPy1PickleModule:
    Pickler = _NumPy1Pickler
    Unpickler = pickle.Unpickler


def save_as_numpy1(obj: Any, path: Path) -> Path:
    """``torch.save`` as a file written with NumPy 1 would come out."""
    torch.save(obj, path, pickle_module=_NumPy1PickleModule)
    return path


def numpy_values() -> dict[str, Any]:
    """Values of the kinds old PySlowFast checkpoints hold beside the weights."""
    return {"best_top1": np.float64(77.5), "iters": np.int64(3), "lrs": np.arange(3, dtype=np.float32)}
