"""Broken inputs: training warns once per file and uses another video (tests/engine/
test_substituted_clips.py counts them and stops past DATA.MAX_BAD_VIDEO_FRACTION); val/test stop
naming the file, or skip it when asked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.datasets.helpers import frame_numbers, make_ssv1, make_video
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.datasets import TooManyBrokenVideosError, VideoDecodeError, build_dataset, build_loader

GOOD = ["good0.mp4", "good1.webm"]
BROKEN = {
    "missing.mp4": "file not found",
    "zero.mp4": "empty",
    "text.mp4": "cannot be opened",
    "truncated.webm": "truncated or damaged",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken")
    videos = root / "videos"
    make_video(videos / "good0.mp4", 40)
    make_video(videos / "good1.webm", 40)
    (videos / "zero.mp4").write_bytes(b"")
    (videos / "text.mp4").write_text("this is not a video\n")
    data = Path(make_video(videos / "whole.webm", 60, gop_size=10)).read_bytes()
    (videos / "truncated.webm").write_bytes(data[: len(data) // 3])  # about 18 of 60 frames left
    write_kinetics_csvs(root, [(name, i) for i, name in enumerate(GOOD + list(BROKEN))])
    return root


def warnings_about(log: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in log.records if r.levelname == "WARNING" and name in r.getMessage()]


def test_training_uses_another_video_and_warns_once_per_file(root: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    ds = build_dataset(small_cfg(root, root / "videos"), "train")
    for _ in range(4):
        for i in range(len(ds)):
            frames, label, index, meta = ds[i]
            assert index == i and frames.shape == (4, 32, 32, 3) and meta["valid"]
            # a good video, or a clip of the truncated one before the cut; always its own label
            assert meta["video_index"] in (0, 1, 5) and label == meta["video_index"]
            # the item says which unreadable video it stands in for
            assert meta["substituted"] == (-1 if meta["video_index"] == i else i)
    for name, reason in BROKEN.items():
        messages = warnings_about(vov3d_log, name)
        assert len(messages) == 1, (name, messages)
        assert str(root / "videos" / name) in messages[0] and reason in messages[0]


def test_training_stops_when_every_video_fails(tmp_path: Path) -> None:
    write_kinetics_csvs(tmp_path, [("missing.mp4", 0), ("gone.mp4", 1)])
    ds = build_dataset(small_cfg(tmp_path, tmp_path), "train")
    with pytest.raises(TooManyBrokenVideosError, match="none of the 2 videos .* could be read.*DATA.PATH_PREFIX"):
        ds[0]


@pytest.mark.parametrize("split", ["val", "test"])
def test_evaluation_stops_naming_the_file(root: Path, split: str) -> None:
    ds = build_dataset(small_cfg(root, root / "videos"), split)
    ds[0]
    for video, (name, reason) in enumerate(BROKEN.items(), start=len(GOOD)):
        with pytest.raises(VideoDecodeError, match=f"^{root / 'videos' / name}: .*{reason}.*SKIP_BROKEN.*scan_dataset"):
            ds[(video + 1) * ds.num_views - 1]  # the last view: the truncated video fails at its end


def test_an_error_in_a_loader_worker_arrives_as_its_one_line(root: Path) -> None:
    cfg = small_cfg(root, root / "videos")
    cfg.DATA_LOADER.NUM_WORKERS, cfg.TRAIN.BATCH_SIZE = 2, 1
    with pytest.raises(VideoDecodeError) as error:
        list(build_loader(cfg, "val"))
    message = str(error.value)
    assert message.startswith(f"{root / 'videos' / 'missing.mp4'}: file not found") and "\n" not in message


def test_evaluation_can_skip_broken_videos(root: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    cfg = small_cfg(root, root / "videos")
    cfg.TEST.SKIP_BROKEN_VIDEOS = True
    ds = build_dataset(cfg, "test")
    items = [ds[i] for i in range(len(ds))]
    valid = [meta["valid"] for _, _, _, meta in items]
    # 6 views of 2 good videos, then 3 unreadable ones and the truncated one (a WebM without a
    # stream duration is decoded whole, so every clip of it sees that it ends before its header says)
    assert valid == [True] * 12 + [False] * 24
    frames, label, index, meta = items[20]
    assert frames.shape == (4, 40, 40, 3) and not frames.any() and (label, index, meta["video_index"]) == (3, 20, 3)
    for name in BROKEN:
        assert len(warnings_about(vov3d_log, name)) == 1


def test_missing_and_corrupt_jpeg_frames(tmp_path: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    make_ssv1(tmp_path, {"1": 8, "2": 8, "3": 8})
    (tmp_path / "frames" / "1" / "1_000003.jpg").unlink()
    (tmp_path / "frames" / "2" / "2_000005.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cfg = small_cfg(tmp_path, tmp_path / "frames", "ssv1")
    cfg.DATA.NUM_FRAMES = 8  # the val clip needs frames 0..6, the two broken ones among them
    test = build_dataset(cfg, "val")
    with pytest.raises(VideoDecodeError, match=r"frames/1: frame file .*1_000003.jpg is missing"):
        test[0]
    with pytest.raises(VideoDecodeError, match=r"frames/2: frame file .*2_000005.jpg is not a readable image"):
        test[1]
    train = build_dataset(cfg, "train")
    frames, _, _, meta = train[0]
    spans = [(round(7 * i / 8), round(7 * (i + 1) / 8)) for i in range(8)]  # the original's SS segments
    assert meta["video_index"] == 2 and all(a <= n <= b for n, (a, b) in zip(frame_numbers(frames), spans))
    assert len(warnings_about(vov3d_log, "1_000003.jpg")) == 1
    assert torch.isfinite(frames).all()
