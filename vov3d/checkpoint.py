"""The one checkpoint reader and writer.

Files are dicts in PySlowFast's layout, ``{"epoch", "model_state", "optimizer_state", "cfg"}``,
so vov3d reads its own files, PySlowFast's X3D ``.pyth`` files and the VoV3D paper's ``.pth``
files alike (module names are the legacy ones: no renaming). A bare state dict and the
``module.`` prefix of DDP-saved files are accepted too.

Loading is strict: every tensor of the file must land in the model and every model tensor must
come from the file. The one exception is the classifier (the module the network's
``get_classifier()`` returns: ``head.projection`` in X3D and VoV3D) when the class count differs
(fine-tuning K400 weights on SSv1, say): the model keeps its freshly initialised classifier and
one log line says so. Inference and testing need the trained classifier, so
they load with ``reinit_classifier=False`` and another class count is an error.
Every entry (training, testing, predict, export) loads through ``load_weights``: a file whose
stored config names another network and whose tensors do not fit is one short line naming the
differences (``MODEL.ARCH (file 'x3d', run 'vov3d')``), not a list of tensor names.

Files are read with ``torch.load(weights_only=True)``: a pickle can run any code, and published
weights are passed around between people. The only extra types allowed are the NumPy scalars and
arrays that PySlowFast-era files hold; anything else is refused unless the user opts in
(TRUST_CHECKPOINT, ``--trust-checkpoint``).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn
import yaml

from vov3d.config import CfgNode
from vov3d.utils.atomic import atomic_path
from vov3d.utils.text import first_of

try:
    from numpy._core import multiarray as _multiarray  # NumPy 2
except ImportError:
    from numpy.core import multiarray as _multiarray  # NumPy 1

logger = logging.getLogger(__name__)

# Prefixes that wrappers add to parameter names: DDP and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Most tensor names listed in one error message.
_MAX_LISTED = 10


# What the stored config must agree on for a file to be this run's model and data.
COMPARED_KEYS = (
    "MODEL.ARCH", "MODEL.MODEL_NAME", "MODEL.NUM_CLASSES", "TRAIN.DATASET", "TEST.DATASET",
    "DATA.NUM_FRAMES", "DATA.TRAIN_CROP_SIZE", "DATA.TEST_CROP_SIZE",
    "X3D.WIDTH_FACTOR", "X3D.DEPTH_FACTOR", "X3D.BOTTLENECK_FACTOR", "X3D.DIM_C5",
    "VOV3D.DEPTH", "VOV3D.INNER_CH", "VOV3D.TRANS_FUNC",
)  # fmt: skip
# Those of COMPARED_KEYS that decide the network's tensors: where one differs, the file is of another network.
NETWORK_KEYS = tuple(k for k in COMPARED_KEYS if k.startswith(("MODEL.ARCH", "MODEL.MODEL_NAME", "X3D.", "VOV3D.")))
TRUST_HINT = (
    "only if you trust where the file came from, load it anyway with TRUST_CHECKPOINT True (run_net) "
    "or --trust-checkpoint (predict, export)"
)


def _numpy_globals() -> list[Any]:
    """NumPy scalars, dtypes and arrays, under both module names: files pickled with NumPy 1.x
    name ``numpy.core.multiarray``, NumPy 2 ``numpy._core.multiarray``. Object arrays stay out."""
    dtypes = {type(np.dtype(code)) for code in np.typecodes["All"] if code not in "OMm"}
    allowed: list[Any] = [np.dtype, np.ndarray, *sorted(dtypes, key=str)]
    for function in (_multiarray.scalar, _multiarray._reconstruct):
        allowed += [function, (function, f"numpy.core.multiarray.{function.__name__}")]
    return allowed


SAFE_GLOBALS = _numpy_globals()


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the model; says which file and tensors."""


class UnsafeCheckpointError(CheckpointError):
    """The file's pickle asks for a global that the safe loader refuses (it could run code)."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The network inside DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def find_classifier(model: nn.Module) -> Optional[tuple[str, nn.Module]]:
    """The module name (``head.projection`` in X3D and VoV3D) and the module of the classifier of
    the network inside ``model``, as the network's ``get_classifier()`` says (timm's name); None
    for a network that has no such method."""
    net = unwrap_model(model)
    if not callable(getattr(net, "get_classifier", None)):
        return None
    classifier = net.get_classifier()
    for name, module in net.named_modules():
        if module is classifier:
            return name, module
    raise ValueError(f"{type(net).__name__}.get_classifier() returned a module that is not part of the network")


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
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(checkpoint, f)


def apply_checkpoint(
    checkpoint: dict[str, Any],
    path: str,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    *,
    reinit_classifier: bool = True,
) -> dict[str, Any]:
    """Load the checkpoint dict read from ``path`` into ``model`` (and ``optimizer``, if given and
    the file has its state); returns ``checkpoint``.

    Raises CheckpointError if any tensor is missing, unexpected or mis-shaped. The classifier may
    have another class count only with ``reinit_classifier`` (fine-tuning): the model then keeps
    its own.
    """
    state = {_strip_wrappers(k): v for k, v in checkpoint["model_state"].items()}
    net = unwrap_model(model)
    expected = net.state_dict()
    found = find_classifier(net)
    reinitialised = found is not None and _drop_other_classifier(path, state, expected, found[0], reinit_classifier)
    _check_tensors(path, state, expected, f"{found[0]}." if reinitialised else None)
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


def read_checkpoint(path: str, trust: bool = False) -> dict[str, Any]:
    """The checkpoint dict of ``path``, with its tensors on the CPU; a bare state dict is wrapped.

    Read safely (``weights_only``, NumPy types allowed); a file that needs more is refused with
    UnsafeCheckpointError unless ``trust``, which unpickles it fully after a warning.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_globals(path, str(e))
        if refused is None:  # not a question of globals: the file is damaged
            raise CheckpointError(f"checkpoint {path}: not a readable PyTorch checkpoint ({e})") from None
        if not trust:
            raise UnsafeCheckpointError(
                f"checkpoint {path}: refused to load: its pickle needs {', '.join(refused)}, which could run "
                f"code on this machine; {TRUST_HINT}"
            ) from None
        logger.warning("checkpoint %s: unpickling it fully (trusted): it needs %s", path, ", ".join(refused))
        data = _load_trusted(path)
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


def _refused_globals(path: str, message: str) -> Optional[list[str]]:
    """The globals the safe loader refused in ``path``, read without running the pickle; None
    when the error was about something else."""
    named = re.findall(r"GLOBAL (\S+)", message) + re.findall(r"got <class '([^']+)'>", message)
    if not named:
        return None
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS if not isinstance(g, tuple)}
    allowed |= {g[1] for g in SAFE_GLOBALS if isinstance(g, tuple)}
    try:
        listed = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
    except Exception:  # an old (non-zip) file: the error message names the first one
        listed = []
    return sorted(set(listed + named) - allowed) or named


def _load_trusted(path: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # whatever the reason, the file is unusable
        raise CheckpointError(f"checkpoint {path}: not a readable PyTorch checkpoint ({e})") from e


def config_differences(checkpoint: dict[str, Any], cfg: CfgNode, keys: tuple[str, ...] = COMPARED_KEYS) -> list[str]:
    """``KEY (file X, run Y)`` for each of ``keys`` where the config stored in the file (its YAML
    dump) differs from ``cfg``; empty when the file stores no config or agrees."""
    try:
        stored = yaml.safe_load(checkpoint.get("cfg") or "")
    except yaml.YAMLError:
        return []
    if not isinstance(stored, dict):
        return []
    differences = []
    for key in keys:
        theirs, ours = _lookup(stored, key), _lookup(cfg, key)
        if theirs is not None and ours is not None and _plain(theirs) != _plain(ours):
            differences.append(f"{key} (file {theirs!r}, run {_plain(ours)!r})")
    return differences


def _lookup(tree: Any, key: str) -> Any:
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def load_weights(
    path: str,
    checkpoint: dict[str, Any],
    model: nn.Module,
    cfg: CfgNode,
    optimizer: Optional[torch.optim.Optimizer] = None,
    *,
    trained_classifier: bool,
) -> None:
    """Load the checkpoint read from ``path`` into the model of the run ``cfg``: the one loader of
    every entry (resuming, fine-tuning, testing, predict, export), so that a file of another
    network is the same short error everywhere, naming where the config stored in the file differs
    from ``cfg`` (``MODEL.ARCH (file 'x3d', run 'vov3d')``) instead of listing tensor names.

    ``trained_classifier`` (testing, inference): the file's classifier is required, and a stored
    config that differs but whose weights fit is named in a warning. Without it (training) the
    classifier may be re-initialised for another class count, and differences are expected.
    """
    differences = config_differences(checkpoint, cfg)
    mismatch = _network_mismatch(checkpoint, model) if config_differences(checkpoint, cfg, NETWORK_KEYS) else ""
    if mismatch:
        raise CheckpointError(f"checkpoint {path} does not fit this model ({mismatch}): {_another(differences)}")
    if differences and trained_classifier:
        logger.warning("checkpoint %s %s", path, _another(differences))
    apply_checkpoint(checkpoint, path, model, optimizer, reinit_classifier=not trained_classifier)


def _another(differences: list[str]) -> str:
    return f"was trained with another config: {'; '.join(differences)}; pass the config it was trained with"


def _network_mismatch(checkpoint: dict[str, Any], model: nn.Module) -> str:
    """How many tensors of the file do not fit the model, the classifier's class count aside
    (``"856 of the model's 944 tensors missing from the file, 300 not in the model"``); empty
    when they all fit."""
    state = {_strip_wrappers(k): v for k, v in checkpoint["model_state"].items()}
    expected = unwrap_model(model).state_dict()
    found = find_classifier(model)
    skipped = () if found is None else (f"{found[0]}.weight", f"{found[0]}.bias")
    missing, unexpected, misshaped = _tensor_problems(
        {k: v for k, v in state.items() if k not in skipped}, {k: v for k, v in expected.items() if k not in skipped}
    )
    counts = [
        f"{len(names)} {what}"
        for what, names in (
            (f"of the model's {len(expected)} tensors missing from the file", missing),
            ("not in the model", unexpected),
            ("mis-shaped", misshaped),
        )
        if names
    ]
    return ", ".join(counts)


def _is_state_dict(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and all(isinstance(v, torch.Tensor) for v in data.values())


def _strip_wrappers(name: str) -> str:
    while name.startswith(_WRAPPER_PREFIXES):
        name = name.split(".", 1)[1]
    return name


def _drop_other_classifier(path: str, state: dict, expected: dict, classifier: str, allowed: bool) -> bool:
    """If the file's classifier (the module named ``classifier``) has another class count than
    the model's, drop it from ``state`` (the model keeps its own) and log one line, or raise when
    not ``allowed``. Only the class count may differ."""
    weight, bias = f"{classifier}.weight", f"{classifier}.bias"
    if weight not in state or weight not in expected:
        return False
    theirs, ours = state[weight].shape, expected[weight].shape
    if theirs == ours or theirs[1:] != ours[1:]:
        return False
    if bias in state and bias in expected and state[bias].shape != (theirs[0],):
        return False  # an inconsistent classifier: reported as mis-shaped
    if not allowed:
        raise CheckpointError(
            f"checkpoint {path} classifies {theirs[0]} classes but MODEL.NUM_CLASSES is {ours[0]}: this needs "
            f"the trained classifier; pass MODEL.NUM_CLASSES {theirs[0]} (or use the config it was trained with)"
        )
    del state[weight]
    state.pop(bias, None)
    logger.info(
        "checkpoint %s: classifier %s has %d classes, the model %d: re-initialised it",
        path,
        classifier,
        theirs[0],
        ours[0],
    )
    return True


def _check_tensors(path: str, state: dict, expected: dict, kept_prefix: Optional[str]) -> None:
    """Raise one CheckpointError listing every missing, unexpected and mis-shaped tensor; the
    model's tensors under ``kept_prefix`` (its re-initialised classifier) need none in the file."""
    kept = {k for k in expected if kept_prefix is not None and k.startswith(kept_prefix)}
    missing, unexpected, misshaped = _tensor_problems(state, {k: v for k, v in expected.items() if k not in kept})
    problems = [
        f"{len(names)} {what}: {first_of(names, _MAX_LISTED)}"
        for what, names in (
            ("missing from the file", missing),
            ("not in the model", unexpected),
            ("mis-shaped", misshaped),
        )
        if names
    ]
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not fit the {len(expected)} tensors of the model: " + "; ".join(problems)
        )


def _tensor_problems(state: dict, expected: dict) -> tuple[list[str], list[str], list[str]]:
    """The tensors missing from ``state``, those not in ``expected``, and the mis-shaped ones
    (``name (file shape, model shape)``)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} (file {tuple(v.shape)}, model {tuple(expected[k].shape)})"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    return missing, unexpected, misshaped
