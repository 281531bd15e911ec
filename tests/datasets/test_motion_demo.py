"""The motion demo dataset: pairs of classes are time reversals, files and CSVs are complete."""

from pathlib import Path

import numpy as np

from vov3d.datasets.motion_demo import CLASSES, DemoSpec, make_motion_dataset, render_video


def test_pairs_are_time_reversals() -> None:
    spec = DemoSpec()
    for first in range(0, len(CLASSES), 2):
        forward = render_video(first, np.random.default_rng(5), spec)
        backward = render_video(first + 1, np.random.default_rng(5), spec)
        assert np.array_equal(backward, forward[::-1])
        assert forward.shape[1:] == (spec.height, spec.width, 3) and forward.dtype == np.uint8
        assert spec.min_frames <= len(forward) <= spec.max_frames


def test_frames_move() -> None:
    video = render_video(0, np.random.default_rng(1), DemoSpec()).astype(np.float32)
    assert np.abs(video[0] - video[-1]).mean() > 2.0


def test_writes_videos_and_csvs(tmp_path: Path) -> None:
    spec = DemoSpec(train_per_class=1, val_per_class=1, test_per_class=1, min_frames=8, max_frames=10)
    make_motion_dataset(str(tmp_path), spec, seed=3)
    assert (tmp_path / "classes.txt").read_text().splitlines() == CLASSES
    for split in ("train", "val", "test"):
        lines = (tmp_path / f"{split}.csv").read_text().splitlines()
        assert len(lines) == len(CLASSES)
        for line in lines:
            path, label = line.split(" ")
            assert (tmp_path / path).stat().st_size > 0 and 0 <= int(label) < len(CLASSES)
