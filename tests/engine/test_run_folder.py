"""Training checkpoints: names, picking the newest readable one, fine-tuning from a published
VoV3D checkpoint, and the random-generator states that make resuming exact."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from tests.conftest import CONFIGS
from vov3d.checkpoint import CheckpointError, apply_checkpoint, save_checkpoint
from vov3d.config import ConfigError, load_config
from vov3d.engine.run_folder import (
    load_test_checkpoint,
    newest_checkpoint,
    read_file_or_run,
    restore_rng_states,
    resume_or_initialise,
    rng_state,
    save_training_checkpoint,
)
from vov3d.engine.runtime import prepare_model
from vov3d.engine.solver import LRSchedule, build_optimizer
from vov3d.utils.run_layout import RunFolder


def net(seed: int, width: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, width), nn.BatchNorm1d(width))


def test_truncated_newest_is_skipped_with_a_warning(tmp_path: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    run = RunFolder(str(tmp_path))
    save_checkpoint(run.checkpoint_path(1), net(1), epoch=0)
    save_checkpoint(run.checkpoint_path(2), net(2), epoch=1)
    newest = Path(run.checkpoint_path(2))
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    model = net(3)
    path, checkpoint = newest_checkpoint(str(tmp_path))
    apply_checkpoint(checkpoint, path, model)
    assert path.endswith("checkpoint_epoch_00001.pyth") and checkpoint["epoch"] == 0
    assert "skipping unreadable checkpoint" in vov3d_log.text and "checkpoint_epoch_00002.pyth" in vov3d_log.text
    assert torch.equal(model[0].weight, net(1)[0].weight)


def test_a_readable_checkpoint_of_another_model_is_an_error(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    save_checkpoint(run.checkpoint_path(1), net(1), epoch=0)
    save_checkpoint(run.checkpoint_path(2), net(2, width=5), epoch=1)
    path, checkpoint = newest_checkpoint(str(tmp_path))
    with pytest.raises(CheckpointError, match="checkpoint_epoch_00002"):
        apply_checkpoint(checkpoint, path, net(3))


def test_no_checkpoint(tmp_path: Path) -> None:
    assert newest_checkpoint(str(tmp_path)) is None


def test_rng_states_round_trip() -> None:
    checkpoint = {"rng_states": [rng_state()]}
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    restore_rng_states(checkpoint)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def manifest_checkpoint(shared_dir: Path, name: str, folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A file in the published layout whose tensors have the manifest's names and shapes."""
    entry = json.loads((shared_dir / "reference" / "state_dict_manifest.json").read_text())[name]
    generator = torch.Generator().manual_seed(0)
    state = {
        key: torch.randint(0, 100, shape, generator=generator) if dtype == "int64"
        else torch.randn(shape, generator=generator)
        for key, shape, dtype in entry["state_dict"]
    }  # fmt: skip
    path = folder / f"{name}.pyth"
    torch.save({"epoch": 255, "model_state": state, "optimizer_state": None, "cfg": "..."}, path)
    return path, state


def test_finetune_400_to_174_reinitialises_only_the_classifier(
    shared_dir: Path, tmp_path: Path, vov3d_log: pytest.LogCaptureFixture
) -> None:
    path, state = manifest_checkpoint(shared_dir, "K400_vov3d_M", tmp_path)
    cfg = load_config(
        [str(CONFIGS / "SSv1/vov3d/finetune/vov3d_M_F32_finetune.yaml")],
        ["TRAIN.CHECKPOINT_FILE_PATH", str(path), "OUTPUT_DIR", str(tmp_path / "out"), "LOG_MODEL_INFO", "False"],
    )
    assert cfg.MODEL.NUM_CLASSES == 174 and cfg.TRAIN.CHECKPOINT_EPOCH_RESET
    model = prepare_model(cfg, torch.device("cpu"), train=True)
    fresh_classifier = model.head.projection.weight.detach().clone()
    optimizer = build_optimizer(model, cfg)
    start, resumed = resume_or_initialise(cfg, model, optimizer, LRSchedule.from_cfg(cfg), None)
    assert (start, resumed) == (0, None)
    assert "400 classes, the model 174: re-initialised" in vov3d_log.text
    assert "starting at epoch 1 with a fresh optimizer" in vov3d_log.text
    loaded = model.state_dict()
    for key, tensor in state.items():
        if key.startswith("head.projection."):
            assert loaded[key].shape[0] == 174
        else:
            assert torch.equal(loaded[key], tensor.to(loaded[key].dtype)), key
    assert torch.equal(model.head.projection.weight, fresh_classifier)
    assert not optimizer.state  # no momentum buffers from the old run


def test_no_cuda_rng_state_in_cpu_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def touched() -> None:
        raise AssertionError("a CPU run initialised CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine running NUM_GPUS 0
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", touched)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", touched)
    cfg = load_config([str(CONFIGS / "quick" / "vov3d_tiny.yaml")], ["NUM_GPUS", "0", "OUTPUT_DIR", str(tmp_path)])
    model = net(0)
    path = save_training_checkpoint(
        cfg, 0, model, torch.optim.SGD(model.parameters(), lr=0.1), LRSchedule.from_cfg(cfg), None
    )
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["rng_states"][0]["cuda"] == []
    restore_rng_states({"rng_states": [{**checkpoint["rng_states"][0], "cuda": [torch.zeros(1)]}]}, cuda=False)


def quick_run(tmp_path: Path, *opts: str):
    cfg = load_config(
        [str(CONFIGS / "quick" / "vov3d_tiny.yaml")],
        ["OUTPUT_DIR", str(tmp_path), "LOG_MODEL_INFO", "False", "NUM_GPUS", "0", *opts],
    )
    return cfg, prepare_model(cfg, torch.device("cpu"), train=True)


def test_resuming_another_runs_checkpoint_is_refused(tmp_path: Path) -> None:
    """The same network trained on SSv1 in this OUTPUT_DIR: its tensors fit, its data does not."""
    first, model = quick_run(tmp_path, "TRAIN.DATASET", "ssv1", "DATA.NUM_FRAMES", "4")
    save_checkpoint(RunFolder(str(tmp_path)).checkpoint_path(1), model, epoch=0, cfg=first)
    cfg, model = quick_run(tmp_path, "TRAIN.DATASET", "ssv2", "DATA.NUM_FRAMES", "4")
    with pytest.raises(ConfigError) as error:
        resume_or_initialise(cfg, model, build_optimizer(model, cfg), LRSchedule.from_cfg(cfg), None)
    message = str(error.value)
    assert "TRAIN.DATASET (file 'ssv1', run 'ssv2')" in message and "DATA.NUM_FRAMES" not in message
    assert f"OUTPUT_DIR {tmp_path} holds the checkpoints of another run" in message
    assert "another OUTPUT_DIR" in message and "TRAIN.AUTO_RESUME False" in message
    cfg, model = quick_run(tmp_path, "TRAIN.DATASET", "ssv1", "DATA.NUM_FRAMES", "4")  # the same run: resumes
    assert resume_or_initialise(cfg, model, build_optimizer(model, cfg), LRSchedule.from_cfg(cfg), None)[0] == 1


def test_testing_warns_about_another_config_and_keeps_the_classifier(tmp_path: Path, vov3d_log) -> None:
    trained, model = quick_run(tmp_path, "MODEL.NUM_CLASSES", "8")
    save_checkpoint(str(tmp_path / "c.pyth"), model, cfg=trained)
    cfg, model = quick_run(tmp_path, "MODEL.NUM_CLASSES", "5", "TEST.CHECKPOINT_FILE_PATH", str(tmp_path / "c.pyth"))
    with pytest.raises(CheckpointError, match="classifies 8 classes but MODEL.NUM_CLASSES is 5"):
        load_test_checkpoint(cfg, model)
    lines = [r.getMessage() for r in vov3d_log.records]
    assert any("MODEL.NUM_CLASSES (file 8, run 5)" in line for line in lines)
    assert not any("re-initialised" in line for line in lines)


def test_a_run_folder_names_its_newest_complete_checkpoint(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    save_checkpoint(run.checkpoint_path(1), net(1), epoch=0)
    save_checkpoint(run.checkpoint_path(2), net(2), epoch=1)
    Path(run.checkpoints_dir, ".checkpoint_epoch_00003.pyth.x.tmp").write_bytes(b"half")
    path, checkpoint = read_file_or_run(run.root)
    assert path == run.checkpoint_path(2) and checkpoint["epoch"] == 1
    with pytest.raises(CheckpointError, match="without a complete epoch-end checkpoint"):
        read_file_or_run(run.checkpoints_dir)
