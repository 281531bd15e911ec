"""``tools/run_net.py`` end to end on the quick config: train, validate, checkpoint, test; and a
run killed after a checkpoint resumes to the same parameters as one that was not."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import REPO
from tests.engine.conftest import (
    SUBPROCESS_ENV,
    final_weights,
    run_net,
    run_net_command,
    tensorboard_events,
)
from vov3d.utils.run_layout import RunFolder

EPOCHS = 3
OPTS = ["TENSORBOARD.ENABLE", True, "TEST.SAVE_RESULTS_PATH", "results.pyth"]


@pytest.fixture(scope="module")
def full_run(colour_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output_dir = tmp_path_factory.mktemp("full_run")
    run_net(colour_data, output_dir, *OPTS)
    return output_dir


def test_outputs_of_a_run(full_run: Path) -> None:
    run = RunFolder(str(full_run))
    for path in (run.config_path, run.log_path(), run.stats_path, *map(run.confusion_matrix_path, ("csv", "png"))):
        assert os.path.isfile(path), path
    assert sorted(os.listdir(run.checkpoints_dir)) == [
        os.path.basename(run.checkpoint_path(e)) for e in range(1, EPOCHS + 1)
    ]
    checkpoint = torch.load(run.checkpoint_path(EPOCHS), weights_only=True)
    assert {"epoch", "model_state", "optimizer_state", "cfg", "scaler_state", "scheduler_state", "rng_states"} <= set(
        checkpoint
    )
    assert checkpoint["epoch"] == EPOCHS - 1 and "VoV3D" in checkpoint["cfg"]
    assert [s["epoch"] for s in run.read_stats("train_epoch")] == ["1/3", "2/3", "3/3"]
    assert [s["iter"] for s in run.read_stats("train_iter")][:2] == ["2/4", "4/4"]
    assert len(run.read_stats("val_epoch")) == EPOCHS
    (final,) = run.read_stats("test_final")
    assert final["num_videos"] == 4 and final["num_views"] == 6 and final["skipped_videos"] == 0
    assert {"top1_acc", "top5_acc", "mean_class_acc", "top1_err", "top5_err"} <= set(final)
    results = torch.load(full_run / "results.pyth", weights_only=True)
    assert results["scores"].shape == (4, 4) and results["views"].tolist() == [6, 6, 6, 6]


def test_tensorboard_events_hold_what_the_run_logged(full_run: Path) -> None:
    """Read the event files back: the writer creates a file on construction, so only the values tell."""
    run = RunFolder(str(full_run))
    scalars, images = tensorboard_events(Path(run.tensorboard_dir("kinetics")))
    train = run.read_stats("train_iter")
    for key in ("loss", "lr"):
        assert scalars[f"train/{key}"] == pytest.approx([s[key] for s in train], rel=1e-3), key  # json rounds
    assert scalars["val/top1_err"] == pytest.approx([s["top1_err"] for s in run.read_stats("val_epoch")])
    (final,) = run.read_stats("test_final")
    assert scalars["test/top1_acc"] == pytest.approx([final["top1_acc"]])
    (png,) = images["test/confusion_matrix"]
    logged = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    written = np.asarray(Image.open(run.confusion_matrix_path("png")).convert("RGB"))
    assert logged.shape == written.shape and (logged == written).all()


def test_killed_run_resumes_to_the_same_parameters(full_run: Path, colour_data: Path, tmp_path: Path) -> None:
    """Kill the process once epoch 2's checkpoint exists; leave a truncated epoch-3 checkpoint
    behind as a crash mid-write without the atomic rename would; the rerun must skip it, resume
    from epoch 2 and end with the uninterrupted run's weights."""
    process = subprocess.Popen(
        run_net_command(colour_data, tmp_path, *OPTS), cwd=REPO, env=SUBPROCESS_ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    run = RunFolder(str(tmp_path))
    second = Path(run.checkpoint_path(2))
    deadline = time.monotonic() + 240
    while not second.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert second.exists(), "the run ended before writing its second checkpoint"
    third = Path(run.checkpoint_path(3))
    third.write_bytes(second.read_bytes()[: second.stat().st_size // 3])

    run_net(colour_data, tmp_path, *OPTS)
    log = Path(run.log_path()).read_text()
    assert "skipping unreadable checkpoint" in log and "checkpoint_epoch_00003.pyth" in log
    assert f"resumed from {second} (epoch 2 done); continuing at epoch 3" in log
    expected, resumed = final_weights(full_run, EPOCHS), final_weights(tmp_path, EPOCHS)
    for key, tensor in expected.items():
        assert torch.equal(resumed[key], tensor), key
