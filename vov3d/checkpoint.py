"""The one checkpoint reader and writer.

Files are dicts in PySlowFast's layout, ``{"epoch", "model_state", "optimizer_state", "cfg"}``,
so vov3d reads its own files, PySlowFast's X3D ``.pyth`` files and the VoV3D paper's ``.pth``
files alike (module names are the legacy ones: no renaming). A bare state dict and the
``module.`` prefix of DDP-saved files are accepted too.

Loading is strict: every tensor of the file must land in the model and every model tensor must
come from the file. The one exception is the classifier (``head.projection``) when the class
count differs (fine-tuning K400 weights on SSv1, say): the model keeps its freshly initialised
classifier and one log line says so.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from typing import Any, Optional

import torch
import torch.nn as nn

from vov3d.config import CfgNode

logger = logging.getLogger(__name__)

CLASSIFIER = "head.projection."
# Prefixes that wrappers add to parameter names: DDP and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Most tensor names listed in one error message.
_MAX_LISTED = 10


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the model; says which file and tensors."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The network inside DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def save_checkpoint(
    path: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    epoch: int = 0,
    cfg: Optional[CfgNode] = None,
    **extra: Any,
) -> None:
    """Write a checkpoint atomically: a crash mid-write never leaves a truncated file at ``path``.

    ``extra`` (scheduler, scaler, ...) is stored beside the standard keys. ``cfg`` is stored
    as its YAML dump, as PySlowFast does.
    """
    clash = {"epoch", "model_state", "optimizer_state", "cfg"} & set(extra)
    if clash:
        raise TypeError(f"save_checkpoint: {', '.join(sorted(clash))} are standard keys, not extras")
    checkpoint = {
        "epoch": epoch,
        "model_state": unwrap_model(model).state_dict(),
        "optimizer_state": None if optimizer is None else optimizer.state_dict(),
        "cfg": "" if cfg is None else cfg.dump(),
        **extra,
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); not possible on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(
    path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None
) -> dict[str, Any]:
    """Load ``path`` into ``model`` (and ``optimizer``, if given and the file has its state).

    Returns the checkpoint dict, so callers get ``epoch`` and any extras; a bare state dict
    comes back as ``{"model_state": ...}``. Raises CheckpointError if the file is unreadable
    or any tensor is missing, unexpected or mis-shaped (the classifier exception aside).
    """
    checkpoint = read_checkpoint(path)
    state = {_strip_wrappers(k): v for k, v in checkpoint["model_state"].items()}
    net = unwrap_model(model)
    expected = net.state_dict()
    reinitialised = _drop_other_classifier(path, state, expected)
    _check_tensors(path, state, expected, reinitialised)
    optimizer_state = checkpoint.get("optimizer_state")
    restore_optimizer = optimizer is not None and optimizer_state is not None
    if restore_optimizer and reinitialised:
        raise CheckpointError(
            f"checkpoint {path}: cannot restore the optimizer state of a model whose classifier "
            "was re-initialised; load the weights without an optimizer to fine-tune"
        )
    net.load_state_dict(state, strict=False)  # every key was checked above
    if restore_optimizer:
        try:
            optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint {path}: the optimizer state does not fit: {e}") from e
    return checkpoint


def read_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint dict of ``path``, with its tensors on the CPU; a bare state dict is wrapped."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Older files may pickle objects the safe loader refuses (numpy scalars, ...).
        logger.warning("checkpoint %s: not loadable with weights_only=True; unpickling it fully", path)
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # whatever the reason, the file is unusable
            raise CheckpointError(f"checkpoint {path}: not a readable PyTorch checkpoint ({e})") from e
    except Exception as e:
        raise CheckpointError(f"checkpoint {path}: not a readable PyTorch checkpoint ({e})") from e
    if isinstance(data, dict) and _is_state_dict(data.get("model_state")):
        return data
    if _is_state_dict(data):
        return {"model_state": data}
    raise CheckpointError(
        f"checkpoint {path}: expected a dict with 'model_state' (PySlowFast layout) or a state dict "
        f"of tensors, got {type(data).__name__}"
        + (f" with keys {', '.join(map(str, list(data)[:_MAX_LISTED]))}" if isinstance(data, dict) else "")
    )


def _is_state_dict(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and all(isinstance(v, torch.Tensor) for v in data.values())


def _strip_wrappers(name: str) -> str:
    while name.startswith(_WRAPPER_PREFIXES):
        name = name.split(".", 1)[1]
    return name


def _drop_other_classifier(path: str, state: dict, expected: dict) -> bool:
    """If the file's classifier has another class count than the model's, drop it from
    ``state`` (the model keeps its own) and log one line. Only the class count may differ."""
    weight, bias = CLASSIFIER + "weight", CLASSIFIER + "bias"
    if weight not in state or weight not in expected:
        return False
    theirs, ours = state[weight].shape, expected[weight].shape
    if theirs == ours or theirs[1:] != ours[1:]:
        return False
    if bias in state and bias in expected and state[bias].shape != (theirs[0],):
        return False  # an inconsistent classifier: reported as mis-shaped
    del state[weight]
    state.pop(bias, None)
    logger.info(
        "checkpoint %s: classifier %s has %d classes, the model %d: re-initialised it",
        path,
        CLASSIFIER.rstrip("."),
        theirs[0],
        ours[0],
    )
    return True


def _check_tensors(path: str, state: dict, expected: dict, reinitialised: bool) -> None:
    """Raise one CheckpointError listing every missing, unexpected and mis-shaped tensor."""
    kept = {k for k in expected if reinitialised and k.startswith(CLASSIFIER)}
    missing = [k for k in expected if k not in state and k not in kept]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} (file {tuple(v.shape)}, model {tuple(expected[k].shape)})"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = []
    for what, names in (
        ("missing from the file", missing),
        ("not in the model", unexpected),
        ("mis-shaped", misshaped),
    ):
        if names:
            listed = ", ".join(names[:_MAX_LISTED])
            more = f", and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
            problems.append(f"{len(names)} {what}: {listed}{more}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not fit the {len(expected)} tensors of the model: " + "; ".join(problems)
        )
