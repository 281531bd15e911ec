"""Per-class test report: accuracy, counts and the most confused class by name, in the log table
and read back from the CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from vov3d.engine.per_class import (
    CSV_COLUMNS,
    confusion_matrix,
    per_class_results,
    per_class_table,
    write_per_class_csv,
)

NAMES = ["walk", "run, fast", "jump"]
# walk: 3 of 4 right, once taken for jump; run: 1 of 3, twice walk; jump: no test videos
LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1])
PREDICTIONS = torch.tensor([0, 2, 0, 0, 0, 1, 0])


def test_confusion_rows_are_labels() -> None:
    confusion = confusion_matrix(PREDICTIONS, LABELS, 3)
    assert confusion.tolist() == [[3, 0, 1], [2, 1, 0], [0, 0, 0]]


def test_results_name_the_most_confused_class() -> None:
    results = per_class_results(confusion_matrix(PREDICTIONS, LABELS, 3), NAMES)
    walk, run, jump = results
    assert (walk.videos, walk.correct, walk.accuracy, walk.confused_with, walk.confused) == (4, 3, 75.0, "jump", 1)
    assert (run.accuracy, run.confused_with, run.confused) == (pytest.approx(100 / 3), "walk", 2)
    assert (jump.videos, jump.accuracy, jump.confused_with) == (0, None, None)
    table = per_class_table(results).splitlines()
    assert table[1].split() == ["walk", "4", "75.0", "jump", "(1)"]
    assert table[2].startswith("run, fast") and table[2].endswith("33.3  walk (2)")
    assert table[3].split() == ["jump", "0", "-", "-"]


def test_csv_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "per_class.csv"
    write_per_class_csv(per_class_results(confusion_matrix(PREDICTIONS, LABELS, 3), NAMES), str(path))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [
        ["0", "walk", "4", "3", "75.00", "jump", "1"],
        ["1", "run, fast", "3", "1", "33.33", "walk", "2"],
        ["2", "jump", "0", "0", "", "", "0"],
    ]


def test_without_names_classes_are_indices() -> None:
    results = per_class_results(confusion_matrix(PREDICTIONS, LABELS, 3))
    assert [r.name for r in results] == ["0", "1", "2"] and results[1].confused_with == "0"
    with pytest.raises(ValueError, match="2 class names for a 3-class"):
        per_class_results(confusion_matrix(PREDICTIONS, LABELS, 3), NAMES[:2])
