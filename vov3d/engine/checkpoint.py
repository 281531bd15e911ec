"""Where training checkpoints live, which one to resume from, and the training state they carry
beyond the weights (scaler, schedule, random generators). Reading and writing the files is
``vov3d.checkpoint``'s job.

A file ``checkpoint_epoch_00005.pyth`` holds the state after 5 epochs; its ``epoch`` field is
the 0-based index of the last finished epoch (4), as in PySlowFast, so a run resumes at
``epoch + 1``.
"""

from __future__ import annotations

import logging
import os
import random
import re
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn

from vov3d.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from vov3d.config import CfgNode
from vov3d.utils.distributed import all_gather_objects, get_rank, get_world_size, is_main_process

from .solver import LRSchedule

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint_epoch_(\d{5,})\.pyth$")


def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


def checkpoint_path(output_dir: str, epochs_done: int) -> str:
    return os.path.join(checkpoint_dir(output_dir), f"checkpoint_epoch_{epochs_done:05d}.pyth")


def list_checkpoints(output_dir: str) -> list[str]:
    """The run's checkpoints, oldest first; temporary files of interrupted writes are not listed."""
    folder = checkpoint_dir(output_dir)
    if not os.path.isdir(folder):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(folder) if (m := _NAME.match(name))]
    return [os.path.join(folder, name) for _, name in sorted(found)]


def load_newest_checkpoint(
    output_dir: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None
) -> Optional[tuple[str, dict[str, Any]]]:
    """Load the newest readable checkpoint of the run into ``model`` (and ``optimizer``).

    An unreadable file (truncated by a crash, say) is skipped with a warning and the next older
    one is tried; a readable file that does not fit the model is an error, not a reason to fall
    back silently to older weights. Returns (path, checkpoint) or None when there is none.
    """
    for path in reversed(list_checkpoints(output_dir)):
        try:
            return path, load_checkpoint(path, model, optimizer)
        except CheckpointError as e:
            if _readable(path):
                raise
            logger.warning("skipping unreadable checkpoint %s: %s", path, e)
    return None


def _readable(path: str) -> bool:
    try:
        read_checkpoint(path)
    except CheckpointError:
        return False
    return True


def resume_or_initialise(
    cfg: CfgNode,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: Optional[torch.amp.GradScaler],
) -> tuple[int, Optional[dict[str, Any]]]:
    """Continue the run in OUTPUT_DIR (TRAIN.AUTO_RESUME), else start from
    TRAIN.CHECKPOINT_FILE_PATH, else from scratch. Returns the first epoch to train and the
    checkpoint whose random-generator states ``restore_rng_states`` should apply (None when the
    run starts afresh)."""
    found = load_newest_checkpoint(cfg.OUTPUT_DIR, model, optimizer) if cfg.TRAIN.AUTO_RESUME else None
    if found is not None:
        path, checkpoint = found
        start = checkpoint["epoch"] + 1
        logger.info("resumed from %s (epoch %d done); continuing at epoch %d", path, start, start + 1)
        if scaler is not None and checkpoint.get("scaler_state"):
            scaler.load_state_dict(checkpoint["scaler_state"])
        saved = checkpoint.get("scheduler_state")
        if saved and saved != schedule.state_dict():
            logger.warning("the learning-rate schedule differs from the checkpoint's %s; following the config", saved)
        return start, checkpoint

    path = cfg.TRAIN.CHECKPOINT_FILE_PATH
    if not path:
        logger.info("training from scratch (no checkpoint in %s)", checkpoint_dir(cfg.OUTPUT_DIR))
        return 0, None
    reset = cfg.TRAIN.CHECKPOINT_EPOCH_RESET
    checkpoint = load_checkpoint(path, model, None if reset else optimizer)
    start = 0 if reset else checkpoint.get("epoch", -1) + 1
    logger.info(
        "initialised from %s; %s",
        path,
        "starting at epoch 1 with a fresh optimizer (TRAIN.CHECKPOINT_EPOCH_RESET)"
        if reset
        else f"continuing at epoch {start + 1} with its optimizer state",
    )
    return start, None


def save_training_checkpoint(
    cfg: CfgNode,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: Optional[torch.amp.GradScaler],
    dataset: Any = None,
) -> Optional[str]:
    """Write ``checkpoint_epoch_{epoch + 1:05d}.pyth`` from rank 0 (every rank must call it: the
    random-generator states of all ranks are gathered). Returns the path on rank 0."""
    rng_states = all_gather_objects(rng_state(dataset))
    if not is_main_process():
        return None
    path = checkpoint_path(cfg.OUTPUT_DIR, epoch + 1)
    save_checkpoint(
        path,
        model,
        optimizer,
        epoch=epoch,
        cfg=cfg,
        scaler_state=scaler.state_dict() if scaler is not None else None,
        scheduler_state=schedule.state_dict(),
        rng_states=rng_states,
    )
    logger.info("saved %s", path)
    return path


def rng_state(dataset: Any = None) -> dict[str, Any]:
    """This process's Python, NumPy and torch generators, and the dataset's own NumPy generator
    (its ``rng`` attribute) when it has one: with NUM_WORKERS 0 they decide every augmentation.
    Stored as plain types and tensors so that checkpoints load with ``weights_only``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if isinstance(getattr(dataset, "rng", None), np.random.Generator):
        state["dataset"] = dataset.rng.bit_generator.state
    return state


def restore_rng_states(checkpoint: dict[str, Any], dataset: Any = None) -> None:
    """Put back this rank's generators from ``checkpoint``, so a resumed run draws the same
    augmentations as an uninterrupted one. Skipped, with a note, when the world size changed."""
    states = checkpoint.get("rng_states")
    if not states or len(states) != get_world_size():
        logger.info(
            "the checkpoint has no random-generator states for %d processes; not restoring them",
            get_world_size(),
        )
        return
    state = states[get_rank()]
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "dataset" in state and isinstance(getattr(dataset, "rng", None), np.random.Generator):
        dataset.rng.bit_generator.state = state["dataset"]
