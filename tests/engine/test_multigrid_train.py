"""Multigrid training end to end on the small motion demo (24 videos), both cycles on: every
iteration's clips have the shape of the schedule, each epoch's BatchNorm the planned sub-batches,
the run has multigrid's epoch count and validates at its evaluation epochs; stopped (SIGTERM,
SIGKILL) and resumed, with 1 and 2 gloo processes, it ends bit-identical to the run never stopped."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from tests.engine.conftest import QUICK_VOV3D, final_weights, quick_cfg
from tests.engine.test_exact_resume import launch, logged
from vov3d.checkpoint import save_checkpoint
from vov3d.config import CfgNode, ConfigError, load_config
from vov3d.engine import train as train_module
from vov3d.engine.multigrid import MultigridSettings, epoch_batches, epoch_bn_plan, is_eval_epoch
from vov3d.engine.preemption import PREEMPTED_EXIT_CODE
from vov3d.models import SubBatchNorm3d, build_model
from vov3d.utils.run_layout import RunFolder, checkpoint_position

# Coarse epochs of 2 frames at 23 x 23 (batch 8: 4 sub-batches of BN_BASE_SIZE 2), then the default
# 4 frames at 32 x 32 (batch 2); the short cycle's crops 16 and 23 on top. 5 epochs: 2, 2, 2, 2, 4 iterations.
MULTIGRID = (
    "TRAIN.BATCH_SIZE", 2, "MULTIGRID.LONG_CYCLE", True, "MULTIGRID.SHORT_CYCLE", True,
    "MULTIGRID.LONG_CYCLE_FACTORS", "[[0.5, 0.7071], [1, 1]]", "MULTIGRID.BN_BASE_SIZE", 2,
    "MULTIGRID.EPOCH_FACTOR", 1.0, "SOLVER.STEPS", "[0, 2, 4]", "SOLVER.MAX_EPOCH", 5,
)  # fmt: skip
EPOCHS = 5


def train_recording(cfg: CfgNode, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], Any, list[Any]]:
    """Train ``cfg`` in this process; returns the (input shape, sub-batch count) of every training
    forward pass, the run as built (and its initial state), and the input shapes of precise BN."""
    seen: list[tuple[tuple[int, ...], int]] = []
    precise: list[Any] = []
    built = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor]) -> None:
        if None in precise:  # inside precise BN
            precise.append(tuple(inputs[0].shape))
        elif module.training:
            splits = next(m.num_splits for m in module.modules() if isinstance(m, SubBatchNorm3d))
            seen.append((tuple(inputs[0].shape), splits))

    real_build_run, real_precise_bn = train_module.build_run, train_module.update_precise_bn

    def build_run(cfg: Any) -> Any:
        run = real_build_run(cfg)
        run.model.register_forward_pre_hook(record)
        built.append((run, {k: v.clone() for k, v in run.model.state_dict().items()}))
        return run

    def update_precise_bn(*args: Any) -> None:
        precise.append(None)
        real_precise_bn(*args)
        precise.remove(None)

    monkeypatch.setattr(train_module, "build_run", build_run)
    monkeypatch.setattr(train_module, "update_precise_bn", update_precise_bn)
    seeded_train(cfg)
    return seen, built[0], precise


def seeded_train(cfg: CfgNode) -> None:
    """``train`` with the global generators seeded from RNG_SEED, as run_net's processes start."""
    random.seed(cfg.RNG_SEED), np.random.seed(cfg.RNG_SEED), torch.manual_seed(cfg.RNG_SEED)
    train_module.train(cfg)


def planned(cfg: CfgNode) -> list[tuple[tuple[int, ...], int]]:
    settings = MultigridSettings.from_cfg(cfg)
    return [
        ((b.batch_size, 3, b.frames, b.crop_size, b.crop_size), epoch_bn_plan(settings, epoch, 1).num_splits)
        for epoch in range(EPOCHS)
        for b in epoch_batches(settings, epoch, 24)
    ]


def test_every_iteration_trains_the_planned_shape(small_motion: Path, tmp_path: Path, monkeypatch) -> None:
    cfg = quick_cfg(small_motion, tmp_path, *MULTIGRID, "MODEL.NUM_CLASSES", 8, "BN.USE_PRECISE_STATS", False,
                    "TEST.ENABLE", False, "TRAIN.EVAL_PERIOD", 10, "MULTIGRID.EVAL_FREQ", 1)  # fmt: skip
    seen, _, _ = train_recording(cfg, monkeypatch)
    settings = MultigridSettings.from_cfg(cfg)
    assert seen == planned(cfg)
    assert {shape[2:] for shape, _ in seen} == {(2, 16, 16), (2, 23, 23), (4, 16, 16), (4, 23, 23), (4, 32, 32)}
    assert [splits for _, splits in seen] == [4] * 8 + [1] * 4
    stats = RunFolder(str(tmp_path)).read_stats()
    assert [s["epoch"] for s in stats if s["_type"] == "train_epoch"] == [f"{e}/{EPOCHS}" for e in range(1, 6)]
    validated = [s["epoch"] for s in stats if s["_type"] == "val_epoch"]
    assert validated == [f"{e + 1}/{EPOCHS}" for e in range(EPOCHS) if is_eval_epoch(settings, e, 10)]
    assert validated != [f"{EPOCHS}/{EPOCHS}"]  # EVAL_FREQ, not TRAIN.EVAL_PERIOD, chose them
    # The weights are a plain network's: they load strictly into a model built without multigrid.
    build_model(load_config([QUICK_VOV3D])).load_state_dict(final_weights(tmp_path, EPOCHS))


def test_cycles_of_the_default_shape_train_exactly_the_plain_run(
    small_motion: Path, tmp_path: Path, monkeypatch
) -> None:
    """Both cycles on with every factor 1 and BN over the whole batch: the same batches, clips,
    BatchNorm and rates as without multigrid, through the multigrid path (its sampler, item
    shapes, sub-batch BN of one split, schedule), so the final weights are bit-identical."""
    common = ("MODEL.NUM_CLASSES", 8, "TEST.ENABLE", False, "SOLVER.STEPS", "[0, 1, 2]")
    trivial = (
        "MULTIGRID.LONG_CYCLE",
        True,
        "MULTIGRID.SHORT_CYCLE",
        True,
        "MULTIGRID.LONG_CYCLE_FACTORS",
        "[[1, 1]]",
        "MULTIGRID.SHORT_CYCLE_FACTORS",
        "[1, 1]",
        "MULTIGRID.EPOCH_FACTOR",
        1.0,
        "MULTIGRID.BN_BASE_SIZE",
        4,
    )
    plain = quick_cfg(small_motion, tmp_path / "plain", *common)
    seeded_train(plain)
    seen, _, precise = train_recording(quick_cfg(small_motion, tmp_path / "multigrid", *common, *trivial), monkeypatch)
    assert len(seen) == 3 * 6 and {splits for _, splits in seen} == {1}
    assert len(precise) == 3 * 2  # BN.NUM_BATCHES_PRECISE 2 after each epoch, as in the plain run
    expected, trained = final_weights(tmp_path / "plain", 3), final_weights(tmp_path / "multigrid", 3)
    differing = [key for key, tensor in expected.items() if not torch.equal(trained[key], tensor)]
    assert not differing, f"{len(differing)} of {len(expected)} tensors differ, e.g. {differing[:3]}"


def test_fine_tuning_in_bf16_with_loader_workers(small_motion: Path, tmp_path: Path, monkeypatch) -> None:
    """From a checkpoint (the classifier replaced), under bf16 autocast, channels_last (the
    config's default) and 2 loader workers, whose copies of the dataset learn each clip's shape
    from its key; precise BN on."""
    source = tmp_path / "source.pyth"
    save_checkpoint(str(source), build_model(load_config([QUICK_VOV3D], ["MODEL.NUM_CLASSES", 5])))
    cfg = quick_cfg(small_motion, tmp_path / "run", *MULTIGRID, "MODEL.NUM_CLASSES", 8, "TEST.ENABLE", False,
                    "TRAIN.CHECKPOINT_FILE_PATH", source, "TRAIN.CHECKPOINT_EPOCH_RESET", True,
                    "TRAIN.MIXED_PRECISION", True, "TRAIN.MIXED_PRECISION_DTYPE", "bfloat16",
                    "DATA_LOADER.NUM_WORKERS", 2)  # fmt: skip
    assert cfg.MODEL.CHANNELS_LAST
    seen, (run, initial), precise = train_recording(cfg, monkeypatch)
    assert seen == planned(cfg)
    assert set(precise) == {(8, 3, 2, 23, 23), (2, 3, 4, 32, 32)}  # the long cycle's shapes, no short-cycle crop
    loaded = torch.load(source, weights_only=True)["model_state"]
    assert torch.equal(initial["s2.pathway0_res0.branch1.weight"], loaded["s2.pathway0_res0.branch1.weight"])
    assert run.execution.amp_dtype == torch.bfloat16
    assert len(RunFolder(str(tmp_path / "run")).read_stats("train_epoch")) == EPOCHS


def args(data: Path, output_dir: Path, *opts: object) -> list[str]:
    return [
        "--cfg", QUICK_VOV3D, "DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data),
        "OUTPUT_DIR", str(output_dir), "LOG_PERIOD", 1, "TEST.ENABLE", False, "DATA_LOADER.NUM_WORKERS", 0,
        "TRAIN.CHECKPOINT_PERIOD", 1, "BN.USE_PRECISE_STATS", False, *MULTIGRID, *opts,
    ]  # fmt: skip


def assert_same_run(output_dir: Path, reference: Path) -> None:
    expected, resumed = final_weights(reference, EPOCHS), final_weights(output_dir, EPOCHS)
    differing = [key for key, tensor in expected.items() if not torch.equal(resumed[key], tensor)]
    assert not differing, f"{len(differing)} of {len(expected)} tensors differ, e.g. {differing[:3]}"
    assert logged(output_dir) == logged(reference)


@pytest.mark.parametrize(
    "world,stop,opts,newest",
    [
        (1, ("SIGTERM", 9, 0), (), (4, 2)),  # inside the last epoch, the first at the default shape
        (1, ("SIGKILL", 4, 0), ("TRAIN.CHECKPOINT_MINUTES", 1e-6), (1, 1)),  # inside a coarse epoch (4 splits)
        (2, ("SIGTERM", 9, 1), (), (4, 2)),
    ],
    ids=["sigterm_1_process", "sigkill_coarse_epoch", "sigterm_2_processes"],
)
def test_stopped_mid_cycle_and_resumed(
    small_motion: Path, tmp_path: Path, world: int, stop: tuple, opts: tuple, newest: tuple[int, int]
) -> None:
    """Without precise BN, which would recompute the sub-batch statistics from the final weights
    and hide a resume that lost them."""
    reference, stopped = tmp_path / "uninterrupted", tmp_path / "stopped"
    assert launch(list(map(str, args(small_motion, reference))), world) == [0] * world
    codes = launch(list(map(str, args(small_motion, stopped, *opts))), world, stop)
    assert codes == ([-9] if stop[0] == "SIGKILL" else [PREEMPTED_EXIT_CODE] * world)
    assert checkpoint_position(RunFolder(str(stopped)).checkpoints()[-1]) == newest
    assert launch(list(map(str, args(small_motion, stopped))), world) == [0] * world
    assert_same_run(stopped, reference)


def test_a_train_split_smaller_than_a_coarse_batch_stops_before_training(small_motion: Path, tmp_path: Path) -> None:
    """PySlowFast's factors on 24 videos: the coarsest shape (1 frame of 23 x 23) takes 64 clips a batch."""
    cfg = quick_cfg(
        small_motion, tmp_path, "MULTIGRID.LONG_CYCLE", True, "SOLVER.STEPS", "[0, 2]", "TRAIN.BATCH_SIZE", 8,
        "MODEL.NUM_CLASSES", 8,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"^TRAIN.BATCH_SIZE = 8 .*holds 64 clips of 1 x 23 x 23 \(frames x crop\)"):
        train_module.build_run(cfg)
    assert not list(tmp_path.glob("checkpoints/*"))


def test_precise_bn_reads_the_long_cycles_shape_without_the_short_cycle(small_motion: Path, tmp_path: Path) -> None:
    """As PySlowFast's precise-BN loader: the epoch's base shape, not the short cycle's crops."""
    opts = ("MULTIGRID.SHORT_CYCLE", True, "MODEL.NUM_CLASSES", 8, "TEST.ENABLE", False)
    run = train_module.build_run(quick_cfg(small_motion, tmp_path, *opts))
    train_shapes = [tuple(frames.shape) for frames, *_ in run.train_loader]
    assert train_shapes == [(16, 4, 16, 16, 3), (8, 4, 23, 23, 3)]  # crops 0.5 and 0.71 fill the 24 videos
    assert run.precise_bn_loader is not run.train_loader
    assert {tuple(frames.shape) for frames, *_ in run.precise_bn_loader} == {(4, 4, 32, 32, 3)}
    assert len(run.precise_bn_loader) == 6
    plain = train_module.build_run(quick_cfg(small_motion, tmp_path / "plain", "MODEL.NUM_CLASSES", 8))
    assert plain.precise_bn_loader is plain.train_loader
