"""Combining test views (hand-computed cases, padding repeats, broken views), validation metrics,
and the multi-view test on a small generated dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from tests.engine.conftest import COLOURS, quick_cfg, write_dataset
from vov3d.config import ConfigError
from vov3d.engine import evaluate
from vov3d.engine.evaluate import ViewAggregator, first_occurrences, validate
from vov3d.engine.runtime import Execution
from vov3d.utils.logging import StatsLog
from vov3d.utils.meters import topk_correct
from vov3d.utils.run_layout import RunFolder

CPU = torch.device("cpu")

P = torch.tensor


def test_topk_correct_caps_k_at_the_class_count() -> None:
    scores = P([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    top1, top5 = topk_correct(scores, P([2, 0]))
    assert top1.tolist() == [False, True] and top5.tolist() == [True, True]


def test_first_occurrences() -> None:
    assert first_occurrences(P([3, 1, 3, 2, 1])).tolist() == [True, True, False, True, False]


def test_sum_and_max_by_hand() -> None:
    # Two videos x 2 views, 3 classes. Item i is view i % 2 of video i // 2.
    probs = P([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.3, 0.4, 0.3]])
    labels, videos, items = P([2, 2, 1, 1]), P([0, 0, 1, 1]), P([0, 1, 2, 3])

    summed = ViewAggregator(2, 4, 3, "sum")
    summed.update(probs, labels, videos, items)
    result = summed.result()
    assert torch.allclose(result.scores, P([[0.7, 0.5, 0.8], [0.5, 0.9, 0.6]]))
    assert result.top1_acc == 100.0  # video 0 -> class 2, video 1 -> class 1

    maxed = ViewAggregator(2, 4, 3, "max")
    maxed.update(probs, labels, videos, items)
    result = maxed.result()
    assert torch.allclose(result.scores, P([[0.6, 0.3, 0.7], [0.3, 0.5, 0.3]]))
    assert result.top1_acc == 100.0
    assert result.views.tolist() == [2, 2]


def test_max_and_sum_can_disagree() -> None:
    # One confident wrong view against two mildly right ones: sum is right, max is wrong.
    probs = P([[0.9, 0.1], [0.2, 0.8], [0.2, 0.8]])
    args = (probs, P([1, 1, 1]), P([0, 0, 0]), P([0, 1, 2]))
    summed, maxed = ViewAggregator(1, 3, 2, "sum"), ViewAggregator(1, 3, 2, "max")
    summed.update(*args)
    maxed.update(*args)
    assert summed.result().top1_acc == 100.0 and maxed.result().top1_acc == 0.0


def test_padding_repeats_count_once() -> None:
    # A DistributedSampler over 3 items and 2 ranks pads with item 0: rank 0 gets [0, 2],
    # rank 1 gets [1, 0]. The repeat of item 0 (here with other scores) must be ignored.
    aggregator = ViewAggregator(3, 3, 2, "sum")
    aggregator.update(P([[0.9, 0.1], [0.4, 0.6]]), P([0, 1]), P([0, 2]), P([0, 2]))  # rank 0
    aggregator.update(P([[0.2, 0.8], [0.1, 0.9]]), P([1, 0]), P([1, 0]), P([1, 0]))  # rank 1
    result = aggregator.result()
    assert torch.allclose(result.scores, P([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]]))
    assert result.views.tolist() == [1, 1, 1]
    assert result.top1_acc == 100.0
    # ... also when both copies arrive in one gathered batch.
    once = ViewAggregator(3, 3, 2, "sum")
    once.update(P([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.1, 0.9]]), P([0, 1, 1, 0]), P([0, 2, 1, 0]), P([0, 2, 1, 0]))
    assert torch.allclose(once.result().scores, result.scores)


def test_top5_mean_class_accuracy_and_confusion() -> None:
    # 4 videos, 6 classes, one view each. Labels 0, 0, 1, 2; predictions 0, 1, 1, 5.
    probs = torch.full((4, 6), 0.01)
    for video, predicted in enumerate([0, 1, 1, 5]):
        probs[video, predicted] = 0.9
    probs[3, 2] = 0.0  # the label of video 3 is the least likely class: outside its top 5
    aggregator = ViewAggregator(4, 4, 6)
    aggregator.update(probs, P([0, 0, 1, 2]), P([0, 1, 2, 3]), P([0, 1, 2, 3]))
    result = aggregator.result()
    assert result.top1_acc == 50.0
    assert result.top5_acc == 75.0
    assert result.mean_class_acc == pytest.approx(100 * (0.5 + 1.0 + 0.0) / 3)  # classes present: 0, 1, 2
    expected = torch.zeros(6, 6, dtype=torch.long)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[2, 5] = 1
    assert torch.equal(result.confusion, expected)


def test_invalid_and_missing_views() -> None:
    # Video 0: both views fine. Video 1: one broken view. Video 2: all broken. Video 3: never arrives.
    aggregator = ViewAggregator(4, 8, 2)
    probs = P([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    valid = P([True, True, True, False, False, False])
    aggregator.update(probs, P([0, 0, 1, 1, 0, 0]), P([0, 0, 1, 1, 2, 2]), P([0, 1, 2, 3, 4, 5]), valid)
    result = aggregator.result()
    assert result.views.tolist() == [2, 1, 0, 0]
    assert result.lost_views.tolist() == [0, 1, 2, 0]
    assert result.scored.tolist() == [True, True, False, False]
    assert torch.allclose(result.scores[1], P([0.2, 0.8]))  # the broken view's zeros were not added
    assert result.top1_acc == 100.0


class ScoreTable(nn.Module):
    """An 'eval-mode model' whose probabilities are looked up by the first pixel of the clip (the
    uint8 value before DATA.MEAN / DATA.STD, the defaults here, normalised it)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[((x[:, 0, 0, 0, 0] * 0.225 + 0.45) * 255).round().long()]


class Items(Dataset):
    """Item i is a clip holding i; ``order`` lists the items the loader should yield (repeats too)."""

    def __init__(self, labels: list[int], order: list[int]) -> None:
        self.labels, self.order = labels, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int):
        i = self.order[position]
        return torch.full((1, 1, 1, 3), i, dtype=torch.uint8), self.labels[i], i, {}


def test_validate_counts_padding_repeats_once(tmp_path: Path) -> None:
    table = P([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])  # predictions 0, 0, 1
    labels = [0, 1, 1]  # right, wrong, right
    cfg = quick_cfg(tmp_path, tmp_path / "out")
    loader = DataLoader(Items(labels, [0, 1, 2, 1, 1]), batch_size=2)  # item 1 repeated twice
    execution, log = Execution.from_cfg(cfg, CPU), StatsLog(cfg.OUTPUT_DIR)
    stats = validate(ScoreTable(table), loader, 0, cfg.SOLVER.MAX_EPOCH, execution, log)
    assert stats["num_clips"] == 3
    assert stats["top1_err"] == pytest.approx(100 / 3)
    assert stats["top5_err"] == 0.0


@pytest.fixture(scope="module")
def data_with_a_broken_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_dataset(
        tmp_path_factory.mktemp("broken"),
        {"train": [(COLOURS[0], 0)] * 4, "val": [(COLOURS[0], 0)] * 4, "test": [(c, k) for k, c in enumerate(COLOURS)]},
    )
    (root / "test" / "002.mp4").write_bytes(b"not a video")
    return root


def test_broken_test_video_is_skipped_and_reported(
    data_with_a_broken_video: Path, tmp_path: Path, vov3d_log: pytest.LogCaptureFixture
) -> None:
    cfg = quick_cfg(
        data_with_a_broken_video, tmp_path, "TEST.SKIP_BROKEN_VIDEOS", True, "TEST.ALLOW_RANDOM_WEIGHTS", True,
        "TEST.SAVE_RESULTS_PATH", "results.pyth", "TEST.BATCH_SIZE", 5,
    )  # fmt: skip
    result = evaluate.test(cfg)
    assert result.scored.tolist() == [True, True, False, True]
    assert result.lost_views.tolist() == [0, 0, 6, 0]
    assert "randomly initialised" in vov3d_log.text
    assert "6 views of 1 videos could not be decoded" in vov3d_log.text and "002.mp4" in vov3d_log.text
    saved = torch.load(tmp_path / "results.pyth", weights_only=True)
    assert saved["scores"].shape == (4, 4) and saved["labels"].tolist() == [0, 1, 2, 3]
    run = RunFolder(str(tmp_path))
    assert Path(run.confusion_matrix_path("png")).read_bytes()[:4] == b"\x89PNG"
    assert Path(run.confusion_matrix_path("csv")).read_text().count("\n") == 4


def test_testing_without_a_checkpoint_needs_an_opt_in(data_with_a_broken_video: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TEST.ALLOW_RANDOM_WEIGHTS"):
        evaluate.test(quick_cfg(data_with_a_broken_video, tmp_path))
