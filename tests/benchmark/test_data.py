"""``benchmark data`` on tiny inputs: the rows and what they count, the inputs, and a naive baseline
that reads the same clips."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from tests.conftest import CONFIGS
from vov3d.benchmark import clip_costs, data, data_inputs
from vov3d.cli.args import parse_with_overrides
from vov3d.cli.benchmark import build_parser
from vov3d.datasets import build_dataset
from vov3d.datasets.clip_dataset import read_frames
from vov3d.datasets.decoder import PtsWindow, PyAVVideo
from vov3d.datasets.encode import write_video
from vov3d.datasets.motion_demo import DemoSpec, render_video
from vov3d.datasets.transforms import Normalize

# The paper's configs shrunk to 16-frame clips 2 frames apart (of 2-second videos) of 32 pixels.
TINY = [
    "DATA.SAMPLING_RATE",
    "2",
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
    data_inputs.make_inputs(str(folder), videos=2, seconds=2.0, size=(48, 64))
    return folder


def parse(*argv: str) -> argparse.Namespace:
    """``benchmark data ARGV`` as the command line reads it (overrides trailing)."""
    return parse_with_overrides(build_parser(), ["--threads", "1", "data", *argv])


def quick(inputs: Path, *argv: str) -> argparse.Namespace:
    """``parse`` of a run over ``inputs`` of 2 clips, timed once without warm-up, tiny configs."""
    return parse("--inputs", str(inputs), "--clips", "2", "--warmup", "0", "--repeats", "1", *argv, *TINY)


def test_rows_have_positive_figures(inputs: Path) -> None:
    """Every row, with what its clips cost: decoding work, the bytes of the clip a worker sends
    (read back from the dataset), the workers' CPU and clips/s per core."""
    args = quick(inputs, "--batch-size", "1", "--workers", "0,2")
    results = args.func(args)
    rows = {(row["path"], row["split"], row["workers"]): row for row in results["rows"]}
    assert set(rows) == {
        ("kinetics", "train", "in-process"),
        ("kinetics naive decoder", "train", "in-process"),
        ("kinetics", "train", 0),
        ("kinetics", "train", 2),
        ("kinetics", "test", "in-process"),
        ("ssv1 JPEG", "train", "in-process"),
        ("ssv1 Pillow decode only", "train", "in-process"),
        ("ssv1 transform only", "train", "in-process"),
        ("ssv1 JPEG", "train", 0),
        ("ssv1 JPEG", "train", 2),
    }
    assert all(row["clips_per_s"] > 0 and row["ms_per_clip"] > 0 for row in rows.values())
    assert rows["kinetics", "train", "in-process"]["speedup"] > 0
    assert 0 < rows["ssv1 JPEG", "train", "in-process"]["jpeg_share"]
    assert 0 < rows["ssv1 JPEG", "train", "in-process"]["transform_share"]
    assert "x naive" in results["table"] and json.loads(json.dumps(results))["settings"]["clips"] == 2
    cfg = data.dataset_cfg(str(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml"), TINY, "unused", "unused")
    clip_bytes = build_dataset(cfg, "train", paths=[str(inputs / "kinetics/videos/000.mp4")], labels=[0])[0][0].nbytes
    for (path, split, workers), row in rows.items():
        if path not in ("kinetics", "ssv1 JPEG"):  # the references
            assert row.get("bytes_per_clip") is None and row.get("clips_per_s_per_core") is None
            continue
        assert row["bytes_per_clip"] == clip_bytes  # train and test crops are both 32 here
        assert row["clips_per_s_per_core"] == pytest.approx(
            row["clips_per_s"] / max(workers, 1) if workers != "in-process" else row["clips_per_s"]
        )
        if split == "train":
            assert row["samples"] == 1
        if workers == "in-process":
            assert row.get("worker_cpu_ms_per_clip") is None
        else:  # CPU clocks tick every 10 ms or so: a tiny clip may cost none
            assert row["worker_cpu_ms_per_clip"] >= 0
            assert row.get("packets_per_clip") is None  # the workers' decoders are not counted
        if path == "kinetics" and workers == "in-process":  # a test clip's spatial crops share one decode
            shared = cfg.TEST.NUM_SPATIAL_CROPS if split == "test" else 1
            assert row["packets_per_clip"] >= row["frames_per_clip"] >= 16 / shared
        elif path == "ssv1 JPEG":
            assert row.get("packets_per_clip") is None and row.get("frames_per_clip") is None  # JPEG folders


def test_make_inputs_skips_finished_folder(inputs: Path) -> None:
    video = inputs / "kinetics" / "videos" / "000.mp4"
    before = video.stat().st_mtime_ns
    data_inputs.make_inputs(str(inputs), videos=2, seconds=2.0, size=(48, 64))
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
    data_inputs.make_inputs(
        str(tmp_path), videos=3, size=(64, 86), encoding=data_inputs.ENCODINGS["x264"], sources=[source]
    )
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
    assert len(frames) == data_inputs.SSV1_FRAMES


def test_original_encoding_copies_the_sources(tmp_path: Path) -> None:
    """``--encoding original``: the files as downloaded, byte for byte and with their suffix."""
    source = tmp_path / "downloaded.mkv"
    spec = DemoSpec(height=48, width=64, fps=30, min_frames=20, max_frames=20)
    write_video(str(source), render_video(0, np.random.default_rng(0), spec), 30)
    with pytest.raises(ValueError, match="--source"):
        data_inputs.make_inputs(str(tmp_path / "none"), encoding=None)
    data_inputs.make_inputs(str(tmp_path / "inputs"), videos=2, encoding=None, sources=[str(source)])
    kinetics = tmp_path / "inputs" / "kinetics"
    assert [p.name for p in (kinetics / "videos").iterdir()] == ["000.mkv"]
    assert (kinetics / "videos" / "000.mkv").read_bytes() == source.read_bytes()
    assert (kinetics / "val.csv").read_text().splitlines() == ["videos/000.mkv 0", "videos/000.mkv 1"]
    assert len(list((tmp_path / "inputs" / "ssv1" / "20bn-something-something-v1" / "000").glob("*.jpg"))) == 20


def test_clip_counts_are_those_of_the_clips_read_alone(inputs: Path) -> None:
    """Packets and frames decoded per clip as each clip's own read counts them, the bytes of an
    item's frames; the dataset's own ``open_video`` is back afterwards."""
    folder = str(inputs / "kinetics")
    cfg = data.dataset_cfg(str(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml"), TINY, folder, folder)
    dataset = build_dataset(cfg, "train")
    clips, counts = clip_costs.clip_counts(dataset, [0, 1, 2], seed=5)
    packets = frames = 0
    for video, selection, _ in data.draw_clips(build_dataset(cfg, "train"), [0, 1, 2], seed=5):
        with PyAVVideo(dataset.paths[video]) as source:
            read_frames(source, selection)
            packets, frames = packets + source.decoded_packets, frames + source.decoded_frames
    assert clips == 3 and "open_video" not in vars(dataset)
    assert counts == {
        "packets_per_clip": packets / 3,
        "frames_per_clip": frames / 3,
        "bytes_per_clip": counts["bytes_per_clip"],
    }
    assert counts["bytes_per_clip"] == dataset[0][0].nbytes


def test_an_item_of_several_clips_counts_each() -> None:
    assert clip_costs.clips_in_item(torch.zeros(2, 16, 8, 8, 3, dtype=torch.uint8)) == 2  # AUG.NUM_SAMPLE 2
    assert clip_costs.clips_in_item(torch.zeros(16, 8, 8, 3, dtype=torch.uint8)) == 1
    assert clip_costs.clips_in_item(torch.zeros(3, 16, 8, 8)) == 1  # float C x T x H x W


class BusyItems(Dataset):
    """Items that each cost 30 ms of CPU."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        end = time.process_time() + 0.03
        while time.process_time() < end:
            pass
        return index


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_cpu_clock_counts_the_processes_that_load(workers: int) -> None:
    loader = DataLoader(BusyItems(), batch_size=1, num_workers=workers, persistent_workers=workers > 0)
    batches = iter(loader)
    clock = clip_costs.loader_cpu_clock(loader)
    assert clock is not None
    start, before = time.perf_counter(), clock()
    assert len(list(batches)) == 4
    used, elapsed = clock() - before, time.perf_counter() - start
    assert 0.08 <= used <= elapsed + 0.05  # 4 x 30 ms, less what a worker did before the first reading


def test_num_samples_repeats_the_train_rows(inputs: Path) -> None:
    """``--num-samples 1,2``: the train rows again with AUG.NUM_SAMPLE 2, every clip counted."""
    args = quick(inputs, "--batch-size", "2", "--workers", "1", "--num-samples", "1,2")
    rows = {(row["path"], row["split"], row.get("samples"), row["workers"]): row for row in args.func(args)["rows"]}
    for path in ("kinetics", "ssv1 JPEG"):
        one, two = rows[path, "train", 1, "in-process"], rows[path, "train", 2, "in-process"]
        assert (one["clips"], two["clips"]) == (2, 4)  # two items of one clip, then of two
        assert two["bytes_per_clip"] == one["bytes_per_clip"] == rows[path, "train", 2, 1]["bytes_per_clip"]
        assert rows[path, "train", 2, 1]["clips"] == 2  # one batch of two clips (of one video)
        assert "speedup" not in two and "jpeg_share" not in two  # the references read one-clip items
