"""``benchmark data`` on tiny inputs: the rows, and a naive baseline that reads the same clips."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import CONFIGS
from vov3d.benchmark import data
from vov3d.cli.args import parse_with_overrides
from vov3d.cli.benchmark import build_parser
from vov3d.datasets import build_dataset
from vov3d.datasets.decoder import PtsWindow, PyAVVideo
from vov3d.datasets.transforms import Normalize

# The paper's configs shrunk to 4-frame clips of 32 pixels, as tests can afford.
TINY = [
    "DATA.NUM_FRAMES",
    "4",
    "DATA.TRAIN_JITTER_SCALES",
    "[36, 44]",
    "DATA.TRAIN_CROP_SIZE",
    "32",
    "DATA.TEST_CROP_SIZE",
    "32",
    "TEST.NUM_ENSEMBLE_VIEWS",
    "2",
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    data.make_inputs(str(folder), videos=2, seconds=1.0, size=(48, 64))
    return folder


def parse(*argv: str) -> argparse.Namespace:
    """``benchmark data ARGV`` as the command line reads it (overrides trailing)."""
    return parse_with_overrides(build_parser(), ["--threads", "1", "data", *argv])


def test_rows_have_positive_figures(inputs: Path) -> None:
    args = parse(
        "--inputs",
        str(inputs),
        "--clips",
        "2",
        "--batch-size",
        "1",
        "--workers",
        "0,1",
        "--warmup",
        "0",
        "--repeats",
        "1",
        *TINY,
    )
    results = args.func(args)
    rows = {(row["path"], row["split"], row["workers"]): row for row in results["rows"]}
    assert set(rows) == {
        ("kinetics", "train", "in-process"),
        ("kinetics naive decoder", "train", "in-process"),
        ("kinetics", "train", 0),
        ("kinetics", "train", 1),
        ("kinetics", "test", "in-process"),
        ("ssv1 JPEG", "train", "in-process"),
        ("ssv1 Pillow decode only", "train", "in-process"),
        ("ssv1 transform only", "train", "in-process"),
        ("ssv1 JPEG", "train", 0),
        ("ssv1 JPEG", "train", 1),
    }
    assert all(row["clips_per_s"] > 0 and row["ms_per_clip"] > 0 for row in rows.values())
    assert rows["kinetics", "train", "in-process"]["speedup"] > 0
    assert 0 < rows["ssv1 JPEG", "train", "in-process"]["jpeg_share"]
    assert 0 < rows["ssv1 JPEG", "train", "in-process"]["transform_share"]
    assert "x naive" in results["table"] and json.loads(json.dumps(results))["settings"]["clips"] == 2


def test_make_inputs_skips_finished_folder(inputs: Path) -> None:
    video = inputs / "kinetics" / "videos" / "000.mp4"
    before = video.stat().st_mtime_ns
    data.make_inputs(str(inputs), videos=2, seconds=1.0, size=(48, 64))
    assert video.stat().st_mtime_ns == before


def test_naive_decoder_reads_the_same_frames(inputs: Path) -> None:
    path = str(inputs / "kinetics" / "videos" / "001.mp4")
    indices = [29, 3, 3, 17, 0]
    with PyAVVideo(path) as video:
        ours = video.get_frames(indices)
    assert torch.equal(data.naive_frames(path, indices), ours.float())


def test_naive_decoder_reads_the_same_pts_window(inputs: Path) -> None:
    """The original Kinetics rule (frames 10-25 shown in the window and frame 26 after it; the last
    position clamped to that one)."""
    path = str(inputs / "kinetics" / "videos" / "001.mp4")
    with PyAVVideo(path) as video:
        ticks = video.pts_per_frame
        window = PtsWindow(int(9.5 * ticks), int(25.2 * ticks), np.array([0, 4, 4, 15, 40]))
        ours = video.get_window(window)
        assert torch.equal(ours, video.get_frames([10, 14, 14, 25, 26]))
    assert torch.equal(data.naive_frames(path, window), ours.float())


def test_naive_clip_is_the_clip_of_the_dataset(inputs: Path) -> None:
    """Same frames, same crop: only uint8 versus float resizing differs (about a level at most)
    once our uint8 crop is normalised as the network gets it."""
    folder = str(inputs / "kinetics")
    cfg = data.dataset_cfg(str(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml"), TINY, folder, folder)
    dataset = build_dataset(cfg, "train")
    clips = data.draw_clips(dataset, [0, 1], seed=5)
    dataset.reseed(5)
    for video, selection, plan in clips:
        assert isinstance(selection, PtsWindow)  # Kinetics picks the original's way
        norm = Normalize.from_cfg(cfg)
        ours = norm(dataset[video][0][None])[0]
        naive = data.naive_clip(dataset.paths[video], selection, plan, dataset.transform.crop_size, norm)
        assert naive.shape == ours.shape
        assert (naive - ours).abs().max() < 1.5 / 255 / min(cfg.DATA.STD)


def test_make_inputs_from_real_videos(real_videos: Path, tmp_path: Path) -> None:
    """``--source``: the real video resized by tools/resize_videos.py's code, listed in turn."""
    source = str(real_videos / "kinetics_style_340x256_30fps.mp4")
    data.make_inputs(str(tmp_path), videos=3, size=(64, 86), encoding="x264", sources=[source])
    kinetics = tmp_path / "kinetics"
    assert sorted(p.name for p in (kinetics / "videos").iterdir()) == ["000.mp4"]
    with PyAVVideo(str(kinetics / "videos" / "000.mp4")) as video:
        assert (video.size, video.num_frames, video.fps) == ((64, 84), 300, 30)  # 340x256 to a short side of 64
    assert (kinetics / "test.csv").read_text().splitlines() == [
        "videos/000.mp4 0",
        "videos/000.mp4 1",
        "videos/000.mp4 2",
    ]
    frames = sorted((tmp_path / "ssv1" / "20bn-something-something-v1" / "000").glob("*.jpg"))
    assert len(frames) == data.SSV1_FRAMES
