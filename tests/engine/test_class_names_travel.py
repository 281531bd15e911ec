"""Class names travel with the model: into every training checkpoint and OUTPUT_DIR/classes.txt,
and out into the multi-view test's per-class table, per_class.csv and the labelled confusion
matrix (also readable at 400 classes)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import CONFIGS
from tests.engine.conftest import quick_cfg, tensorboard_events
from vov3d.checkpoint import save_checkpoint
from vov3d.config import load_config
from vov3d.datasets.class_names import read_class_names
from vov3d.engine import evaluate
from vov3d.engine.run_folder import checkpoint_class_names, save_training_checkpoint, write_class_names
from vov3d.engine.runtime import prepare_model
from vov3d.engine.solver import LRSchedule
from vov3d.utils.run_layout import RunFolder
from vov3d.utils.tensorboard import heat_map, labelled_heat_map

NAMES = ["red ball", "green leaf", "blue sky", "yellow sun"]


def test_training_checkpoints_and_the_run_folder_carry_the_names(tmp_path: Path) -> None:
    cfg = load_config(
        [str(CONFIGS / "quick" / "vov3d_tiny.yaml")], ["OUTPUT_DIR", str(tmp_path), "MODEL.NUM_CLASSES", "4"]
    )
    model = prepare_model(cfg, torch.device("cpu"), train=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = save_training_checkpoint(cfg, 0, model, optimizer, LRSchedule.from_cfg(cfg), None, class_names=NAMES)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["class_names"] == NAMES and checkpoint_class_names(checkpoint, 4) == NAMES
    assert checkpoint_class_names(checkpoint, 5) is None  # names for another classifier are not used
    unnamed = save_training_checkpoint(cfg, 1, model, optimizer, LRSchedule.from_cfg(cfg), None)
    assert "class_names" not in torch.load(unnamed, weights_only=True)
    assert write_class_names(str(tmp_path), NAMES) == RunFolder(str(tmp_path)).class_names_path
    assert read_class_names(RunFolder(str(tmp_path)).class_names_path, 4) == NAMES


def test_the_test_report_names_the_classes_from_the_checkpoint(
    colour_data: Path,
    tmp_path: Path,
    vov3d_log: pytest.LogCaptureFixture,
) -> None:
    trained = quick_cfg(colour_data, tmp_path)
    model = prepare_model(trained, torch.device("cpu"), train=False)
    save_checkpoint(str(tmp_path / "named.pyth"), model, cfg=trained, class_names=NAMES)
    cfg = quick_cfg(colour_data, tmp_path, "TEST.CHECKPOINT_FILE_PATH", tmp_path / "named.pyth",
                    "TENSORBOARD.ENABLE", True, "TEST.NUM_ENSEMBLE_VIEWS", 1, "TEST.NUM_SPATIAL_CROPS", 1)  # fmt: skip
    result = evaluate.test(cfg)
    run = RunFolder(str(tmp_path))
    with open(run.per_class_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["name"] for row in rows] == NAMES and [int(row["videos"]) for row in rows] == [1, 1, 1, 1]
    predicted = result.scores.argmax(dim=1).tolist()
    assert [int(row["correct"]) for row in rows] == [int(p == k) for k, p in enumerate(predicted)]
    assert "per-class results of the test" in vov3d_log.text and "yellow sun" in vov3d_log.text
    _, images = tensorboard_events(Path(run.tensorboard_dir("kinetics")))
    (png,) = images["test/confusion_matrix"]
    logged = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert np.array_equal(logged, labelled_heat_map(result.confusion, NAMES).numpy())
    assert logged.shape[1] > logged.shape[0]  # a margin of names beside the square matrix


def dark_columns(image: torch.Tensor, rows: slice) -> int:
    """How many pixel columns of ``rows`` hold dark (text) pixels."""
    return int((image[rows].float().mean(dim=-1) < 128).any(dim=0).sum())


def test_labelled_heat_map_names_rows_and_numbers_columns() -> None:
    matrix = torch.eye(4, dtype=torch.long)
    plain, labelled = heat_map(matrix), labelled_heat_map(matrix, NAMES)
    margin_w, margin_h = labelled.shape[1] - plain.shape[1], labelled.shape[0] - plain.shape[0]
    assert margin_w > 0 and margin_h > 0
    assert torch.equal(labelled[margin_h:, margin_w:], plain)  # the cells are untouched
    longer = labelled_heat_map(matrix, ["a much longer first class name", *NAMES[1:]])
    assert longer.shape[1] > labelled.shape[1]  # the names are drawn, not only numbers
    assert dark_columns(labelled, slice(0, margin_h)) > 0  # column numbers on top


def test_400_classes_get_ticks_far_enough_apart_to_read() -> None:
    matrix = torch.eye(400, dtype=torch.long)
    image = labelled_heat_map(matrix, [f"class {i}" for i in range(400)])
    margin_w = image.shape[1] - 400
    assert margin_w < 40  # row ticks are numbers, not 400 names
    top = image[: image.shape[0] - 400, margin_w:].float().mean(dim=-1) < 128
    labels, inside = 0, False  # runs of text columns along the top margin, one per tick label
    for column in top.any(dim=0).tolist():
        labels, inside = labels + (column and not inside), column
    assert 4 <= labels <= 40
    with pytest.raises(ValueError, match="3 class names for a 400-class"):
        labelled_heat_map(matrix, ["a", "b", "c"])
