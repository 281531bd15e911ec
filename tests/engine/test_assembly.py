"""``build_run``: one assembly of a training run from the cfg, fresh or resumed, and the reduced
one a benchmark asks for; precise BN takes its parts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.engine.conftest import quick_cfg
from vov3d.config import ConfigError
from vov3d.datasets import build_loader
from vov3d.datasets.mixup import MixUp
from vov3d.engine.assembly import build_run
from vov3d.engine.run_folder import save_training_checkpoint
from vov3d.engine.runtime import Execution
from vov3d.engine.train import run_epoch, update_precise_bn
from vov3d.utils.run_layout import RunFolder


def test_a_fresh_run_has_every_part_from_the_cfg(colour_data: Path, tmp_path: Path) -> None:
    cfg = quick_cfg(colour_data, tmp_path, "MIXUP.ENABLE", True, "TRAIN.FREEZE_BACKBONE_EPOCHS", 2,
                    "BN.USE_PRECISE_STATS", False, "LOG_PERIOD", 3)  # fmt: skip
    run = build_run(cfg)
    assert run.execution == Execution.from_cfg(cfg, torch.device("cpu"))
    assert (run.execution.amp_dtype, run.execution.channels_last) == (None, cfg.MODEL.CHANNELS_LAST)
    assert run.net is run.model  # one process, no compile: nothing wraps the network
    assert {id(p) for g in run.optimizer.param_groups for p in g["params"]} == {id(p) for p in run.model.parameters()}
    assert (run.start_epoch, run.resumed, run.max_epoch) == (0, None, cfg.SOLVER.MAX_EPOCH)
    assert run.train_loader.batch_size == run.val_loader.batch_size == cfg.TRAIN.BATCH_SIZE
    assert len(run.train_loader.dataset) == 16 and len(run.val_loader.dataset) == 8
    assert run.mixup == MixUp.from_cfg(cfg) and run.scaler is None
    assert (run.log.output_dir, run.log.period, run.log.writer) == (str(tmp_path), 3, None)
    assert [run.backbone_frozen(epoch) for epoch in range(3)] == [True, True, False]
    assert run.class_names is None  # Kinetics-format CSVs of numbered classes name none


def test_a_run_resumes_from_its_folder_with_the_generators_as_saved(colour_data: Path, tmp_path: Path) -> None:
    cfg = quick_cfg(colour_data, tmp_path)
    first = build_run(cfg)
    torch.manual_seed(7)
    save_training_checkpoint(cfg, 0, first.net, first.optimizer, first.schedule, first.scaler,
                             first.train_loader.dataset)  # fmt: skip
    saved_torch_state = torch.get_rng_state()
    torch.manual_seed(123)  # a new process: other generators, other initial weights
    resumed = build_run(cfg)
    assert resumed.start_epoch == 1 and resumed.resumed is not None
    assert torch.equal(torch.get_rng_state(), saved_torch_state)  # restored after everything that draws
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name
    bench = build_run(cfg, resume=False, validation=False)
    assert bench.start_epoch == 0 and bench.resumed is None and bench.val_loader is None
    assert not torch.equal(bench.model.state_dict()["head.projection.weight"], first.model.head.projection.weight)


def test_run_epoch_trains_the_run_over_a_given_loader(colour_data: Path, tmp_path: Path) -> None:
    cfg = quick_cfg(colour_data, tmp_path, "BN.USE_PRECISE_STATS", False)
    run = build_run(cfg, resume=False, validation=False)
    before = run.model.head.projection.weight.detach().clone()
    stats = run_epoch(run, 0, build_loader(cfg, "val"))  # 8 val clips in batches of 4
    assert stats["_type"] == "train_epoch" and stats["epoch"] == f"1/{cfg.SOLVER.MAX_EPOCH}"
    assert not torch.equal(before, run.model.head.projection.weight)
    logged = [s["_type"] for s in RunFolder(str(tmp_path)).read_stats()]
    assert logged == ["train_iter", "train_epoch"]  # LOG_PERIOD 2: iteration 2 of 2, the epoch


def test_precise_bn_recomputes_the_statistics(colour_data: Path, tmp_path: Path) -> None:
    run = build_run(quick_cfg(colour_data, tmp_path), resume=False, validation=False)
    bn = next(m for m in run.model.modules() if isinstance(m, torch.nn.BatchNorm3d))
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    update_precise_bn(run.net, run.train_loader, 2, run.execution)
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert run.model.training


def test_a_bad_config_stops_before_the_data_is_read(colour_data: Path, tmp_path: Path) -> None:
    """Frozen BN with precise BN is refused first, though no video of this cfg exists either."""
    cfg = quick_cfg(colour_data, tmp_path, "TRAIN.FREEZE_BACKBONE_BN", True, "BN.USE_PRECISE_STATS", True,
                    "DATA.PATH_PREFIX", str(tmp_path / "nowhere"))  # fmt: skip
    with pytest.raises(ConfigError, match="BN.USE_PRECISE_STATS"):
        build_run(cfg)
    with pytest.raises(ConfigError, match="DATA.PATH_PREFIX"):
        build_run(quick_cfg(colour_data, tmp_path, "DATA.PATH_PREFIX", str(tmp_path / "nowhere")))
