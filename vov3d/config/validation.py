"""Checks of a merged config that no single key can make: sizes that must divide, lists that
need one value per channel. Errors name the key and where it was set. Names that must be
registered are checked where models and datasets are built, so this layer imports nothing above it."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence

from .node import CfgNode, cfg_error, key_source

logger = logging.getLogger(__name__)


def validate_cfg(cfg: CfgNode) -> None:
    """Raise ConfigError for the first inconsistency found."""
    if cfg.NUM_GPUS < 0:
        raise cfg_error(cfg, "NUM_GPUS", "must be 0 (CPU) or more")
    if cfg.NUM_SHARDS < 1:
        raise cfg_error(cfg, "NUM_SHARDS", "must be 1 or more")
    if not 0 <= cfg.SHARD_ID < cfg.NUM_SHARDS:
        raise cfg_error(cfg, "SHARD_ID", f"must be in [0, NUM_SHARDS) = [0, {cfg.NUM_SHARDS})")
    check_batch_sizes(cfg, planned_processes(cfg))

    if cfg.DATA.INPUT_CHANNEL_NUM != [3]:
        raise cfg_error(cfg, "DATA.INPUT_CHANNEL_NUM", "only single-pathway RGB input, [3], is supported")
    for key in ("DATA.MEAN", "DATA.STD"):
        if len(cfg.DATA[key.split(".")[1]]) != 3:
            raise cfg_error(cfg, key, "needs one value per RGB channel")
    if len(cfg.DATA.TRAIN_JITTER_SCALES) != 2:
        raise cfg_error(cfg, "DATA.TRAIN_JITTER_SCALES", "must be [min, max]")
    if cfg.DATA.ENSEMBLE_METHOD not in ("sum", "max"):
        raise cfg_error(cfg, "DATA.ENSEMBLE_METHOD", "must be sum or max")
    if cfg.TEST.NUM_SPATIAL_CROPS not in (1, 3):
        raise cfg_error(cfg, "TEST.NUM_SPATIAL_CROPS", "must be 1 or 3")
    if cfg.TEST.NUM_ENSEMBLE_VIEWS < 1:
        raise cfg_error(cfg, "TEST.NUM_ENSEMBLE_VIEWS", "must be 1 or more")
    try:
        signal_numbers(cfg.TRAIN.STOP_SIGNALS)
    except ValueError as e:
        raise cfg_error(cfg, "TRAIN.STOP_SIGNALS", str(e)) from None
    if cfg.TRAIN.CHECKPOINT_MINUTES < 0:
        raise cfg_error(cfg, "TRAIN.CHECKPOINT_MINUTES", "must be 0 (checkpoints only at epoch ends) or more")
    check_multigrid(cfg)
    _warn_warmup_past_the_end(cfg)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_multigrid_training(cfg: CfgNode) -> None:
    """Called when training starts: the long cycle chooses each shape's BatchNorm itself
    (sub-batches of MULTIGRID.BN_BASE_SIZE clips, as PySlowFast overrides BN.NORM_TYPE), which a
    SyncBatchNorm model cannot follow."""
    if cfg.MULTIGRID.LONG_CYCLE and cfg.BN.NORM_TYPE == "sync_batchnorm":
        raise cfg_error(
            cfg,
            "BN.NORM_TYPE",
            "sync_batchnorm cannot follow MULTIGRID.LONG_CYCLE, which sets each shape's BatchNorm to sub-batches "
            "of MULTIGRID.BN_BASE_SIZE clips; use batchnorm (or sub_batchnorm)",
        )


def check_multigrid(cfg: CfgNode) -> None:
    """MULTIGRID.*'s values, checked even while multigrid is off, so that a PySlowFast file with a
    wrong one is caught when it is loaded."""
    m = cfg.MULTIGRID
    factors = m.LONG_CYCLE_FACTORS
    if not factors or not all(
        isinstance(f, (list, tuple)) and len(f) == 2 and all(_is_number(x) and 0 < x <= 1 for x in f) for f in factors
    ):
        raise cfg_error(
            cfg,
            "MULTIGRID.LONG_CYCLE_FACTORS",
            "must be a non-empty list of [frames, crop] factors, each in (0, 1], coarse first, "
            "e.g. [[0.25, 0.7071], [0.5, 0.7071], [0.5, 1], [1, 1]]",
        )
    short = m.SHORT_CYCLE_FACTORS
    if len(short) != 2 or not all(_is_number(x) and 0 < x <= 1 for x in short):
        raise cfg_error(cfg, "MULTIGRID.SHORT_CYCLE_FACTORS", "must be two crop factors in (0, 1], e.g. [0.5, 0.7071]")
    if m.EPOCH_FACTOR <= 0:
        raise cfg_error(cfg, "MULTIGRID.EPOCH_FACTOR", "must be more than 0 (the paper's 1.5)")
    if m.BN_BASE_SIZE < 1:
        raise cfg_error(cfg, "MULTIGRID.BN_BASE_SIZE", "must be 1 clip or more (the paper's 8)")
    if m.EVAL_FREQ < 1:
        raise cfg_error(cfg, "MULTIGRID.EVAL_FREQ", "must be 1 validation per long-cycle shape or more")


def signal_numbers(names: Sequence[str]) -> list[signal.Signals]:
    """``["SIGUSR1", "TERM"]`` (TRAIN.STOP_SIGNALS) -> the signals; raises ValueError naming an
    unknown or uncatchable one."""
    numbers = []
    for name in names:
        full = name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"
        number = getattr(signal.Signals, full, None)
        if number is None or number in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError(f"{name!r} is not a signal a run can catch (e.g. SIGUSR1, SIGTERM, SIGINT)")
        numbers.append(number)
    return numbers


def planned_processes(cfg: CfgNode) -> int:
    """The processes of a run that no launcher started: one per GPU (one on the CPU) on each of
    NUM_SHARDS machines."""
    return max(cfg.NUM_GPUS, 1) * cfg.NUM_SHARDS


def check_batch_sizes(cfg: CfgNode, processes: int, counted: str = "NUM_GPUS * NUM_SHARDS") -> None:
    """TRAIN.BATCH_SIZE and TEST.BATCH_SIZE are global: each must split evenly over the run's
    ``processes`` (``counted`` says how they were counted), and a process's training batch into
    whole videos of AUG.NUM_SAMPLE clips and into BN.NUM_SPLITS sub-batches (sub_batchnorm), when
    it trains. Checked when the cfg is loaded, and again before any process starts when a launcher
    (torchrun, srun) decided their number."""
    for key in ("TRAIN.BATCH_SIZE", "TEST.BATCH_SIZE"):
        size = cfg[key.split(".")[0]].BATCH_SIZE
        if size < 1 or size % processes:
            raise cfg_error(cfg, key, f"the global batch size must be a positive multiple of {counted} = {processes}")
    samples = cfg.AUG.NUM_SAMPLE
    if samples < 1:
        raise cfg_error(cfg, "AUG.NUM_SAMPLE", "must be 1 (one clip per training video) or more")
    if cfg.TRAIN.ENABLE and cfg.TRAIN.BATCH_SIZE // processes % samples:  # a test-only run makes no such batch
        raise cfg_error(
            cfg,
            "AUG.NUM_SAMPLE",
            f"each video gives {samples} clips, so the training batch of each process, TRAIN.BATCH_SIZE "
            f"{cfg.TRAIN.BATCH_SIZE} (set in {key_source(cfg, 'TRAIN.BATCH_SIZE')}) / ({counted}) = "
            f"{cfg.TRAIN.BATCH_SIZE // processes} clips, must be a multiple of {samples}",
        )
    if cfg.BN.NORM_TYPE == "sub_batchnorm" and cfg.TRAIN.ENABLE:
        splits, batch = cfg.BN.NUM_SPLITS, cfg.TRAIN.BATCH_SIZE // processes
        if splits < 1 or batch % splits:
            raise cfg_error(
                cfg,
                "BN.NUM_SPLITS",
                f"sub_batchnorm splits each process's training batch, TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} / "
                f"({counted}) = {batch} clips, into equal sub-batches: it must be 1 or more and divide {batch}",
            )


def _warn_warmup_past_the_end(cfg: CfgNode) -> None:
    """A smoke run of a paper config (SOLVER.MAX_EPOCH 1 with 35 warm-up epochs) or a shortened
    quick start is allowed, as in the original; one line says its rate never reaches BASE_LR."""
    s = cfg.SOLVER
    if cfg.TRAIN.ENABLE and 0 < s.MAX_EPOCH <= s.WARMUP_EPOCHS:
        logger.warning(
            "SOLVER.WARMUP_EPOCHS = %s (set in %s) is not shorter than SOLVER.MAX_EPOCH = %s (set in %s): "
            "the whole run stays in the linear warm-up and the learning rate never reaches SOLVER.BASE_LR; "
            "fine for a smoke run, else shorten the warm-up too",
            s.WARMUP_EPOCHS,
            key_source(cfg, "SOLVER.WARMUP_EPOCHS"),
            s.MAX_EPOCH,
            key_source(cfg, "SOLVER.MAX_EPOCH"),
        )
