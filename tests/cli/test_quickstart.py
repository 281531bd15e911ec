"""The README's main job, shortened: tiny demo data, one epoch, then the multi-view test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from vov3d.datasets.motion_demo import CLASSES, DemoSpec, make_motion_dataset
from vov3d.utils.run_layout import RunFolder


def test_quickstart_end_to_end(tmp_path: Path) -> None:
    data, out = tmp_path / "motion", tmp_path / "out"
    spec = DemoSpec(train_per_class=2, val_per_class=1, test_per_class=1, min_frames=12, max_frames=16)
    make_motion_dataset(str(data), spec)
    result = subprocess.run(
        [sys.executable, "tools/quickstart.py", "--data", str(data), "OUTPUT_DIR", str(out),
         "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5", "DATA.NUM_FRAMES", "4", "VOV3D.INNER_CH", "8",
         "DATA.TRAIN_JITTER_SCALES", "[36, 44]", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
         "TEST.NUM_ENSEMBLE_VIEWS", "2", "DATA_LOADER.NUM_WORKERS", "0", "BN.NUM_BATCHES_PRECISE", "1",
         "TRAIN.BATCH_SIZE", "8"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "quickstart: top-1" in result.stdout and str(out) in result.stdout
    run = RunFolder(str(out))
    (stats,) = run.read_stats("test_final")
    assert stats["num_videos"] == 8 and stats["num_views"] == 6
    assert f"top-1 {stats['top1_acc']:.1f}%" in result.stdout and run.stats_path in result.stdout
    assert run.checkpoints() == [run.checkpoint_path(1)]
    assert os.path.isdir(run.tensorboard_dir("kinetics"))
    assert "turning clockwise" in Path(run.per_class_path).read_text()  # the names of classes.txt


def test_missing_data_is_generated_once(tmp_path: Path, monkeypatch, capsys) -> None:
    # The real writer, on a tiny spec: its CSVs, written last, are what tells the second call that
    # the data is there.
    calls = []
    spec = DemoSpec(train_per_class=1, val_per_class=1, test_per_class=1, min_frames=8, max_frames=8)

    def make(path: str) -> None:
        calls.append(path)
        make_motion_dataset(path, spec, processes=1)

    monkeypatch.setattr("vov3d.cli.quickstart.make_motion_dataset", make)
    from vov3d.cli import quickstart

    data = tmp_path / "none"
    for _ in range(2):  # both calls stop at the typo, after the data step
        assert quickstart.main(["--data", str(data), "SOLVER.BASE_RL", "1"]) == 2
    assert calls == [str(data)]
    assert capsys.readouterr().out.count("generating the motion demo dataset") == 1
    assert len((data / "test.csv").read_text().splitlines()) == len(CLASSES)
