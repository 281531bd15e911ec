"""The run folder's checkpoints: which one a run resumes from or tests, and the training state
they carry beyond the weights (scaler, schedule, random generators). Where the files are is
``vov3d.utils.run_layout``'s job; reading and writing one file is ``vov3d.checkpoint``'s.

A file ``checkpoint_epoch_00005.pyth`` holds the state after 5 epochs; its ``epoch`` field is
the 0-based index of the last finished epoch (4), as in PySlowFast, so a run resumes at
``epoch + 1``. A mid-epoch one, ``checkpoint_epoch_00005_iter_000120.pyth``, holds 120 iterations
of epoch 6 more (its ``iteration``), with the epoch's meters and counts (``epoch_state``); the
newest of either kind is resumed, and a newer checkpoint replaces the older mid-epoch ones. With
several processes rank 0 chooses the file, after a barrier (so that it has finished writing), and
every rank loads that one.

Rank 0 also records how many json_stats lines the run had written (``stats_lines``), for
``vov3d.engine.resume``.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn as nn

from vov3d.checkpoint import (
    COMPARED_KEYS,
    CheckpointError,
    UnsafeCheckpointError,
    config_differences,
    load_weights,
    read_checkpoint,
    save_checkpoint,
    unwrap_model,
)
from vov3d.config import CfgNode, cfg_error
from vov3d.models import load_split_statistics, split_statistics
from vov3d.utils.distributed import (
    all_gather_objects,
    barrier,
    broadcast_object,
    get_rank,
    get_world_size,
    is_main_process,
)
from vov3d.utils.run_layout import RunFolder, checkpoint_position
from vov3d.zoo import resolve_checkpoint

from .solver import LRSchedule

logger = logging.getLogger(__name__)

Found = tuple[str, dict[str, Any]]  # a checkpoint's path and its contents
# What must also agree to resume mid-epoch: the epoch's order of global batches depends on them.
MID_EPOCH_KEYS = ("TRAIN.BATCH_SIZE", "RNG_SEED", "AUG.NUM_SAMPLE", "MULTIGRID.LONG_CYCLE", "MULTIGRID.SHORT_CYCLE")
# And with multigrid on: what decides each epoch's shapes and batch sizes.
MULTIGRID_KEYS = ("MULTIGRID.SHORT_CYCLE_FACTORS", "MULTIGRID.EPOCH_FACTOR", "SOLVER.MAX_EPOCH")
LONG_CYCLE_KEYS = ("MULTIGRID.LONG_CYCLE_FACTORS", "SOLVER.STEPS")


def newest_checkpoint(output_dir: str, trust: bool = False, mid_epoch: bool = False) -> Optional[Found]:
    """The newest readable checkpoint of the run folder ``output_dir``, read, or None; an
    epoch-end one unless ``mid_epoch`` (resuming): a stopped run's partial epoch is not what is
    tested, exported or fine-tuned from.

    An unreadable file (truncated by a crash, say) is skipped with a warning and the next older
    one is tried; a file refused as unsafe is an error, not a reason to fall back to older weights.
    """
    for path in reversed(RunFolder(output_dir).checkpoints()):
        if not mid_epoch and checkpoint_position(path)[1]:
            continue
        try:
            return path, read_checkpoint(path, trust)
        except UnsafeCheckpointError:
            raise
        except CheckpointError as e:
            logger.warning("skipping unreadable checkpoint %s: %s", path, e)
    return None


def read_file_or_run(path: str, trust: bool = False) -> Found:
    """``path`` read; when it is a run folder (an OUTPUT_DIR), its newest complete checkpoint; an
    http(s) URL or a model-zoo name is downloaded once into the cache first (``vov3d.zoo``)."""
    path = resolve_checkpoint(path)
    if not os.path.isdir(path):
        return path, read_checkpoint(path, trust)
    found = newest_checkpoint(path, trust)
    if found is None:
        folder = RunFolder(path).checkpoints_dir
        raise CheckpointError(f"checkpoint {path}: a folder without a complete epoch-end checkpoint in {folder}")
    return found


def chosen_by_rank0(choose: Callable[[], Optional[Found]], trust: bool) -> Optional[Found]:
    """``choose()`` run by rank 0 once every rank got here; the other ranks read the file it chose.

    So that all processes load the same file, including the one rank 0 has just finished writing.
    An error on rank 0 is raised on every rank instead of leaving the others waiting.
    """
    barrier()
    found, error = None, None
    if is_main_process():
        try:
            found = choose()
        except CheckpointError as e:
            error = e
    path, message = broadcast_object((found[0] if found else None, None if error is None else str(error)))
    if error is not None:
        raise error
    if message is not None:
        raise CheckpointError(f"rank 0 could not choose the checkpoint: {message}")
    if found is None and path is not None:
        found = path, read_checkpoint(path, trust)
    return found


def _load_split_statistics(path: str, checkpoint: dict[str, Any], model: nn.Module, adopt_splits: bool) -> None:
    """Give a resumed sub-batch BN model the splits' statistics of its checkpoint (with
    ``adopt_splits``, the long cycle, their split count too); say so when they are missing (a
    checkpoint written without them, or with another BN.NUM_SPLITS): the splits then restart from
    the aggregate, and the run's running statistics differ slightly from an uninterrupted run's."""
    stats = checkpoint.get("sub_batch_stats") or {}
    unmatched = load_split_statistics(unwrap_model(model), stats, adopt_splits)
    if unmatched:
        logger.warning(
            "%s holds no per-split statistics for %d sub-batch BN buffers (e.g. %s): they restart from the "
            "saved aggregate, so this run's BN statistics will differ slightly from an uninterrupted run's",
            path, len(unmatched), unmatched[0],
        )  # fmt: skip


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
    trust = cfg.TRUST_CHECKPOINT
    found = None
    if cfg.TRAIN.AUTO_RESUME:
        found = chosen_by_rank0(lambda: newest_checkpoint(cfg.OUTPUT_DIR, trust, mid_epoch=True), trust)
    if found is not None:
        path, checkpoint = found
        _refuse_another_run(cfg, path, checkpoint)
        load_weights(path, checkpoint, model, cfg, optimizer, trained_classifier=False)
        _load_split_statistics(path, checkpoint, model, adopt_splits=cfg.MULTIGRID.LONG_CYCLE)
        start, iteration = checkpoint["epoch"] + 1, int(checkpoint.get("iteration") or 0)
        logger.info(
            "resumed from %s (epoch %d%s done); continuing at epoch %d",
            path,
            start,
            f" and {iteration} iterations of epoch {start + 1}" if iteration else "",
            start + 1,
        )
        if scaler is not None and checkpoint.get("scaler_state"):
            scaler.load_state_dict(checkpoint["scaler_state"])
        saved = checkpoint.get("scheduler_state")
        if saved and saved != schedule.state_dict():
            logger.warning("the learning-rate schedule differs from the checkpoint's %s; following the config", saved)
        return start, checkpoint

    path = cfg.TRAIN.CHECKPOINT_FILE_PATH
    if not path:
        logger.info("training from scratch (no checkpoint in %s)", RunFolder(cfg.OUTPUT_DIR).checkpoints_dir)
        return 0, None
    reset = cfg.TRAIN.CHECKPOINT_EPOCH_RESET
    path, checkpoint = chosen_by_rank0(lambda: read_file_or_run(path, trust), trust)
    load_weights(path, checkpoint, model, cfg, None if reset else optimizer, trained_classifier=False)
    start = 0 if reset else checkpoint.get("epoch", -1) + 1
    logger.info(
        "initialised from %s; %s",
        path,
        "starting at epoch 1 with a fresh optimizer (TRAIN.CHECKPOINT_EPOCH_RESET)"
        if reset
        else f"continuing at epoch {start + 1} with its optimizer state",
    )
    return start, None


def _refuse_another_run(cfg: CfgNode, path: str, checkpoint: dict[str, Any]) -> None:
    """A checkpoint in OUTPUT_DIR trained with another model or data belongs to another run; a
    mid-epoch one also needs the same global batch and seed, which fix the epoch's order (and,
    under multigrid, the same schedule of shapes)."""
    keys = COMPARED_KEYS
    if checkpoint.get("iteration"):
        m = cfg.MULTIGRID
        keys += MID_EPOCH_KEYS + (MULTIGRID_KEYS if m.LONG_CYCLE or m.SHORT_CYCLE else ())
        keys += LONG_CYCLE_KEYS if m.LONG_CYCLE else ()
    differences = config_differences(checkpoint, cfg, keys)
    if differences:
        raise cfg_error(
            cfg,
            "OUTPUT_DIR",
            f"OUTPUT_DIR {cfg.OUTPUT_DIR} holds the checkpoints of another run: {path} differs from this config "
            f"in {'; '.join(differences)}. To start fresh, give this run another OUTPUT_DIR, or set "
            "TRAIN.AUTO_RESUME False to train from scratch here",
        )


def load_test_checkpoint(cfg: CfgNode, model: nn.Module) -> Optional[Found]:
    """Load TEST.CHECKPOINT_FILE_PATH (a file or a run folder), else the newest checkpoint of
    OUTPUT_DIR, else TRAIN.CHECKPOINT_FILE_PATH, with the trained classifier; return its path and
    contents. TEST.USE_BEST_CHECKPOINT loads OUTPUT_DIR/checkpoints/best.pyth instead. Testing
    random weights needs TEST.ALLOW_RANDOM_WEIGHTS (returns None, with a warning)."""
    trust = cfg.TRUST_CHECKPOINT
    if cfg.TEST.USE_BEST_CHECKPOINT and cfg.TEST.CHECKPOINT_FILE_PATH:
        raise cfg_error(
            cfg, "TEST.USE_BEST_CHECKPOINT", "and TEST.CHECKPOINT_FILE_PATH both choose the weights; set one"
        )

    def choose() -> Optional[Found]:
        if cfg.TEST.USE_BEST_CHECKPOINT:
            best = RunFolder(cfg.OUTPUT_DIR).best_path
            if not os.path.isfile(best):
                raise CheckpointError(
                    f"TEST.USE_BEST_CHECKPOINT: no {best}; train with TRAIN.KEEP_BEST_CHECKPOINT True to write it"
                )
            return best, read_checkpoint(best, trust)
        if cfg.TEST.CHECKPOINT_FILE_PATH:
            return read_file_or_run(cfg.TEST.CHECKPOINT_FILE_PATH, trust)
        found = newest_checkpoint(cfg.OUTPUT_DIR, trust)
        if found is None and cfg.TRAIN.CHECKPOINT_FILE_PATH:
            found = read_file_or_run(cfg.TRAIN.CHECKPOINT_FILE_PATH, trust)
        return found

    found = chosen_by_rank0(choose, trust)
    if found is None:
        if not cfg.TEST.ALLOW_RANDOM_WEIGHTS:
            raise cfg_error(
                cfg,
                "TEST.CHECKPOINT_FILE_PATH",
                f"no checkpoint to test: none given, none in {RunFolder(cfg.OUTPUT_DIR).checkpoints_dir} and no "
                "TRAIN.CHECKPOINT_FILE_PATH; set one, or TEST.ALLOW_RANDOM_WEIGHTS True to test random "
                "weights",
            )
        logger.warning("testing a randomly initialised model (TEST.ALLOW_RANDOM_WEIGHTS): the scores mean nothing")
        return None
    path, checkpoint = found
    load_weights(path, checkpoint, model, cfg, trained_classifier=True)
    logger.info("testing the weights of %s", path)
    return found


def save_training_checkpoint(
    cfg: CfgNode,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: Optional[torch.amp.GradScaler],
    class_names: Optional[list[str]] = None,
    *,
    position: Optional[MidEpoch] = None,
    validate: bool = False,
    train_split: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """Write ``checkpoint_epoch_{epoch + 1:05d}.pyth`` (``epoch`` is the last finished one, -1
    for none) from rank 0, with ``class_names`` when known, so that predict names its classes
    without a label file; with ``position``, the mid-epoch checkpoint of that many more iterations
    of the next epoch. ``validate``: validation follows this epoch-end checkpoint, so a run resumed
    from it validates first if the log shows no result. Older mid-epoch checkpoints are removed
    once it is written. Every rank must call it (the random-generator states of all ranks are
    gathered). ``train_split`` (``resume.split_identity``) lets a mid-epoch resume check its split.
    Returns the path on rank 0."""
    rng_states = all_gather_objects(rng_state(cuda=cfg.NUM_GPUS > 0))
    if not is_main_process():
        return None
    folder = RunFolder(cfg.OUTPUT_DIR)
    path = folder.checkpoint_path(epoch + 1, position.iteration if position else 0)
    extra: dict[str, Any] = {} if class_names is None else {"class_names": list(class_names)}
    if position is not None:
        extra.update(iteration=position.iteration, epoch_iters=position.epoch_iters, epoch_state=position.state)
    if train_split is not None:
        extra["train_split"] = train_split
    splits = split_statistics(unwrap_model(model))
    if splits:  # sub-batch BN's per-split statistics, outside the state dict: a resume goes on exactly
        extra["sub_batch_stats"] = splits
    save_checkpoint(
        path,
        model,
        optimizer,
        epoch=epoch,
        cfg=cfg,
        scaler_state=scaler.state_dict() if scaler is not None else None,
        scheduler_state=schedule.state_dict(),
        rng_states=rng_states,
        stats_lines=_count_lines(folder.stats_path),
        validate=validate,
        **extra,
    )
    _remove_older_mid_epoch(folder, path)
    logger.info("saved %s", path)
    return path


@dataclass(frozen=True)
class MidEpoch:
    """Where a mid-epoch checkpoint stands: ``iteration`` of ``epoch_iters`` done, and the epoch's
    meters and counts (``state``) so far."""

    iteration: int
    epoch_iters: int
    state: dict[str, Any]


def _count_lines(path: str) -> int:
    if not os.path.isfile(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def _remove_older_mid_epoch(folder: RunFolder, newest: str) -> None:
    """Mid-epoch checkpoints hold less training than ``newest``: it replaces them."""
    newest_position = checkpoint_position(newest)
    for path in folder.checkpoints():
        position = checkpoint_position(path)
        if position is not None and position[1] and position < newest_position:
            os.remove(path)


def write_class_names(output_dir: str, names: list[str]) -> str:
    """OUTPUT_DIR/classes.txt, one name per line (line i names class i): the form DATA.CLASS_NAMES
    and predict's --labels read."""
    os.makedirs(output_dir, exist_ok=True)
    path = RunFolder(output_dir).class_names_path
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in names))
    return path


def checkpoint_class_names(checkpoint: dict[str, Any], num_classes: int) -> Optional[list[str]]:
    """The ``class_names`` a checkpoint carries, when it has one for ``num_classes`` classes."""
    names = checkpoint.get("class_names")
    if not names or len(names) != num_classes:
        return None
    return [str(name) for name in names]


def rng_state(cuda: bool = False) -> dict[str, Any]:
    """This process's Python, NumPy and torch generators (CUDA's only when ``cuda``: reading them
    initialises CUDA, which a CPU run must not): what Mixup, dropout and precise BN draw from.
    Training clips draw from generators of their own (``TrainKey``), so no loader state is kept.
    Stored as plain types and tensors so that checkpoints load with ``weights_only``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda else [],
    }


def restore_rng_states(checkpoint: dict[str, Any], cuda: bool = False) -> None:
    """Put back this rank's generators from ``checkpoint``, so a resumed run draws what an
    uninterrupted one would (CUDA's only when ``cuda``). Skipped, with a note, when the world size
    changed: the run then goes on with the same order of global batches, but not bit-exactly."""
    states = checkpoint.get("rng_states")
    if not states or len(states) != get_world_size():
        logger.warning(
            "the checkpoint has no random-generator states for %d processes; not restoring them (the epoch's "
            "order of global batches is kept, but the run is not bit-exact)",
            get_world_size(),
        )
        return
    state = states[get_rank()]
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if cuda and state["cuda"] and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
