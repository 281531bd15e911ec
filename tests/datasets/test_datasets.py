"""Kinetics, SSv1 and SSv2 datasets end to end: item contract, the right frames for train and
every test view, distinct and reproducible SS views, and the webm mode of SSv2."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch

from tests.datasets.helpers import (
    frame_numbers,
    make_ssv1,
    make_ssv2,
    make_video,
    original_kinetics_clip,
    write_frame_list,
)
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.config import ConfigError
from vov3d.datasets import AnnotationError, build_dataset, clip_dataset
from vov3d.datasets.clip_dataset import read_frames
from vov3d.datasets.decoder import VIDEO_BACKENDS, PyAVVideo
from vov3d.datasets.sampling import segment_indices

# name: frames, fps, (height, width)
KINETICS = {
    "a.mp4": (90, 30, (48, 64)),
    "b.webm": (60, 30, (48, 64)),
    "c.mp4": (50, 60, (72, 96)),
    "d.mp4": (40, 15, (64, 48)),
}
SS = {"1001": 24, "1002": 40, "1003": 9}


def original_clip(
    path: str, view: Optional[int], num_views: int, rng=None, frames: int = 4, rate: int = 2
) -> list[int]:
    """The frame numbers of the original's Kinetics clip (helpers.original_kinetics_clip: the
    frames shown in the clip's time window and the next one, at positions in that list)."""
    return frame_numbers(torch.from_numpy(original_kinetics_clip(path, frames, rate, view, num_views, rng)))


def original_spans(count: int, frames: int = 4) -> list[tuple[int, int]]:
    seg = (count - 1) / frames
    return [(int(np.round(seg * i)), int(np.round(seg * (i + 1)))) for i in range(frames)]


@pytest.fixture(scope="module")
def kinetics_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kinetics")
    for name, (count, fps, size) in KINETICS.items():
        make_video(root / "videos" / name, count, fps=fps, size=size, gop_size=10)
    write_kinetics_csvs(root, [(name, label) for label, name in enumerate(KINETICS)])
    return root


@pytest.fixture(scope="module")
def ssv2_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ssv2")
    make_ssv2(root, SS, frames=True, webm=True)
    return root


def check_item(item: tuple, index: int, shape: tuple) -> dict:
    frames, label, item_index, meta = item
    assert frames.shape == shape and frames.dtype == torch.uint8
    assert isinstance(label, int) and item_index == index
    assert set(meta) == {"video_index", "temporal_index", "spatial_index", "valid", "substituted"}
    assert all(type(meta[k]) is int for k in ("video_index", "temporal_index", "spatial_index", "substituted"))
    assert meta["valid"] is True
    return meta


def test_kinetics_train_clips(kinetics_root: Path) -> None:
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    ds = build_dataset(cfg, "train")
    assert (len(ds), ds.num_videos, ds.num_views, ds.labels) == (4, 4, 1, [0, 1, 2, 3])
    assert ds.paths[1] == str(kinetics_root / "videos" / "b.webm")
    for i in range(len(KINETICS)):
        ds.reseed(i)
        frames, label, _, meta = ds[i]
        check_item((frames, label, i, meta), i, (4, 32, 32, 3))
        assert (label, meta["video_index"], meta["temporal_index"], meta["spatial_index"]) == (i, i, -1, -1)
        # the clip's start is the first draw of the item
        assert frame_numbers(frames) == original_clip(ds.paths[i], None, 1, np.random.default_rng(i))
        ds.reseed(i)
        assert torch.equal(ds[i][0], frames)  # same seed, same clip and crop


def test_kinetics_every_test_view(kinetics_root: Path) -> None:
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    ds = build_dataset(cfg, "test")
    assert (len(ds), ds.num_views) == (24, 6)
    for i in range(len(ds)):
        video, view = divmod(i, 6)
        frames, label, index, meta = ds[i]
        check_item((frames, label, index, meta), i, (4, 40, 40, 3))
        assert (meta["video_index"], meta["temporal_index"], meta["spatial_index"]) == (
            video,
            view // 3,
            view % 3,
        )
        assert frame_numbers(frames) == original_clip(ds.paths[video], view // 3, 2)


def test_kinetics_offset_sampling_views(kinetics_root: Path) -> None:
    """DATA.USE_OFFSET_SAMPLING True: stride exactly SAMPLING_RATE, the last view ends the video."""
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    cfg.DATA.USE_OFFSET_SAMPLING = True
    ds = build_dataset(cfg, "test")
    assert frame_numbers(ds[0][0]) == [0, 2, 4, 6]
    assert frame_numbers(ds[3][0]) == [83, 85, 87, 89]  # a.mp4 has 90 frames
    assert frame_numbers(build_dataset(cfg, "val")[0][0]) == [41, 43, 45, 47]  # the middle


def test_the_crops_of_a_test_clip_share_one_decode(kinetics_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Items in order decode each (video, temporal view) once (and open each video once, see
    test_open_once.py), and give what each item gives alone."""
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    ds = build_dataset(cfg, "test")
    opened: list[int] = []
    read: list[str] = []
    open_video = ds.open_video
    monkeypatch.setattr(ds, "open_video", lambda video: opened.append(video) or open_video(video))
    monkeypatch.setattr(
        clip_dataset, "read_frames", lambda source, sel: read.append(source.path) or read_frames(source, sel)
    )
    items = [ds[i][0] for i in range(len(ds))]
    assert opened == list(range(4))
    assert read == [path for path in ds.paths for _ in range(2)]  # 2 temporal views x 3 crops each
    for i in (0, 1, 2, 5, 23):
        assert torch.equal(build_dataset(cfg, "test")[i][0], items[i])


def test_kinetics_val_is_the_middle_clip(kinetics_root: Path) -> None:
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    ds = build_dataset(cfg, "val")
    assert (len(ds), ds.num_views) == (4, 1)
    frames, _, _, meta = ds[0]
    check_item(ds[0], 0, (4, 40, 40, 3))
    assert (meta["temporal_index"], meta["spatial_index"]) == (0, 0)
    assert frame_numbers(frames) == original_clip(ds.paths[0], 1, 2)  # view 1 of 2: delta / 2


@pytest.mark.parametrize("mode", ["frames", "webm"])
def test_ssv2_segments_and_distinct_reproducible_views(ssv2_root: Path, tmp_path: Path, mode: str) -> None:
    if mode == "frames":
        cfg = small_cfg(ssv2_root, ssv2_root / "frames", "ssv2")
    else:  # the same annotations without frame lists: the .webm files are read
        for name in ("labels", "train", "validation"):
            file = f"something-something-v2-{name}.json"
            (tmp_path / file).write_text((ssv2_root / file).read_text())
        cfg = small_cfg(tmp_path, ssv2_root / "videos", "ssv2")
    train = build_dataset(cfg, "train")
    assert train.labels == [0, 1, 2]  # brackets removed before the label lookup
    for i, count in enumerate(SS.values()):
        frames, *_ = train[i]
        check_item(train[i], i, (4, 32, 32, 3))
        numbers = frame_numbers(frames)  # BGR is on for SS configs; frame_numbers undoes it
        assert all(a <= n <= b for n, (a, b) in zip(numbers, original_spans(count)))  # one frame per span
    test = build_dataset(cfg, "test")
    assert len(test) == 3 * 6
    for video, count in enumerate(SS.values()):
        views = [test[video * 6 + view] for view in range(6)]
        clips = [frame_numbers(v[0]) for v in views]
        for view, clip in enumerate(clips):
            assert clip == segment_indices(count, 4, view=view // 3, num_views=2).tolist()
        if count >= 8:
            assert clips[0] != clips[3]  # temporal views 0 and 1 are different clips
    again = build_dataset(cfg, "test")
    assert all(torch.equal(test[i][0], again[i][0]) for i in (0, 4, 11))


def test_ssv1(tmp_path: Path) -> None:
    make_ssv1(tmp_path, SS)
    cfg = small_cfg(tmp_path, tmp_path / "frames", "ssv1")
    ds = build_dataset(cfg, "val")
    assert (len(ds), ds.labels, ds.paths[0]) == (3, [0, 1, 2], str(tmp_path / "frames" / "1001"))
    frames, *_ = ds[1]
    check_item(ds[1], 1, (4, 40, 40, 3))
    assert frame_numbers(frames) == [(a + b) // 2 for a, b in original_spans(40)]
    (tmp_path / "val.csv").unlink()
    with pytest.raises(ConfigError, match="DATA.PATH_TO_DATA_DIR.*val.csv"):
        build_dataset(cfg, "test")


def test_ssv2_without_frames_or_videos_says_how_to_fix(ssv2_root: Path, tmp_path: Path) -> None:
    for name in ("labels", "train", "validation"):
        file = f"something-something-v2-{name}.json"
        (tmp_path / file).write_text((ssv2_root / file).read_text())
    cfg = small_cfg(tmp_path, tmp_path / "nowhere", "ssv2")
    with pytest.raises(ConfigError, match="DATA.PATH_PREFIX.*tools/extract_frames.py"):
        build_dataset(cfg, "train")


def test_ssv2_frame_list_missing_a_video(ssv2_root: Path, tmp_path: Path) -> None:
    for name in ("labels", "train", "validation"):
        file = f"something-something-v2-{name}.json"
        (tmp_path / file).write_text((ssv2_root / file).read_text())
    write_frame_list(tmp_path / "train.csv", {"1001": ["1001/1001_000001.jpg"]})
    with pytest.raises(AnnotationError, match=r"train.csv: no frames for 2 videos .*\['1002', '1003'\]"):
        build_dataset(small_cfg(tmp_path, ssv2_root / "frames", "ssv2"), "train")


def test_malformed_annotations_fail_at_construction(kinetics_root: Path, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a.mp4 0\nb.webm\n")
    with pytest.raises(AnnotationError, match=f"{tmp_path / 'train.csv'}:2:"):
        build_dataset(small_cfg(tmp_path, kinetics_root / "videos"), "train")


def test_config_errors_name_the_key(kinetics_root: Path, ssv2_root: Path) -> None:
    cfg = small_cfg(kinetics_root / "absent", kinetics_root)
    with pytest.raises(ConfigError, match="DATA.PATH_TO_DATA_DIR .*train.csv not found"):
        build_dataset(cfg, "train")
    cfg = small_cfg(ssv2_root, ssv2_root / "frames", "ssv2")
    cfg.MODEL.NUM_CLASSES = 2
    with pytest.raises(ConfigError, match="MODEL.NUM_CLASSES.*labels up to 2"):
        build_dataset(cfg, "train")
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    cfg.DATA.TEST_CROP_SIZE = 41
    cfg.TEST.NUM_SPATIAL_CROPS = 1
    with pytest.raises(ConfigError, match="DATA.TEST_CROP_SIZE"):
        build_dataset(cfg, "test")


def test_decoding_backend_alias_and_unknown(kinetics_root: Path, vov3d_log: pytest.LogCaptureFixture) -> None:
    import vov3d.datasets.clip_dataset as clip_dataset

    clip_dataset._backend_alias_logged = False
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    cfg.DATA.DECODING_BACKEND = "torchvision"  # as in PySlowFast-era configs
    ds = build_dataset(cfg, "train")
    build_dataset(cfg, "val")
    assert ds[0][0].shape == (4, 32, 32, 3)
    assert sum("torchvision is read as pyav" in r.getMessage() for r in vov3d_log.records) == 1
    cfg.DATA.DECODING_BACKEND = "decord"
    with pytest.raises(ConfigError, match="DATA.DECODING_BACKEND = 'decord'.*available: pyav"):
        build_dataset(cfg, "train")


def test_another_video_backend_plugs_in(kinetics_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []

    def reader(path: str, multi_thread: bool) -> PyAVVideo:
        opened.append((path, multi_thread))
        return PyAVVideo(path, multi_thread)

    monkeypatch.setitem(VIDEO_BACKENDS, "mine", reader)
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    cfg.DATA.DECODING_BACKEND, cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE = "mine", True
    build_dataset(cfg, "val")[1]
    assert opened == [(str(kinetics_root / "videos" / "b.webm"), True)]


def test_ss_test_crops_are_the_originals(ssv2_root: Path, kinetics_root: Path) -> None:
    """SS test clips are scaled to TEST_CROP_SIZE and take crop view % NUM_SPATIAL_CROPS: with one
    crop the left one; Kinetics keeps PySlowFast's one-crop rule (short side = jitter min, centre)."""
    cfg = small_cfg(ssv2_root, ssv2_root / "frames", "ssv2")
    cfg.TEST.NUM_SPATIAL_CROPS = 1
    ss = build_dataset(cfg, "test")
    assert [ss[i][3]["spatial_index"] for i in range(2)] == [0, 0]
    assert ss.transform.plan(48, 64, 0) == (40, 53, 0, 0, False)  # 48 x 64 frames, TEST_CROP_SIZE 40
    cfg.TEST.NUM_SPATIAL_CROPS = 3
    assert [build_dataset(cfg, "test").transform.plan(48, 64, i).left for i in range(3)] == [0, 7, 13]
    assert build_dataset(cfg, "val").transform.plan(48, 64, 0) == (40, 53, 0, 7, False)  # centre crop
    cfg = small_cfg(kinetics_root, kinetics_root / "videos")
    cfg.TEST.NUM_SPATIAL_CROPS, cfg.DATA.TEST_CROP_SIZE = 1, 32
    assert build_dataset(cfg, "test").transform.plan(48, 64, 0) == (40, 53, 4, 11, False)


@pytest.mark.parametrize("count,views", [(120, 10), (120, 1), (20, 10)])
def test_kinetics_28fps_views_by_pixels(tmp_path: Path, count: int, views: int) -> None:
    """A 28 fps video, 8 x 5 clips (37.33 frames), K = 10 and 1, and a video shorter than a clip."""
    make_video(tmp_path / "videos" / "e.mp4", count, fps=28, gop_size=10)
    write_kinetics_csvs(tmp_path, [("e.mp4", 0)])
    cfg = small_cfg(tmp_path, tmp_path / "videos")
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 5
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = views, 1
    ds = build_dataset(cfg, "test")
    for k in range(views):
        assert frame_numbers(ds[k][0]) == original_clip(ds.paths[0], k, views, frames=8, rate=5)
    if count < 37:
        assert frame_numbers(ds[views - 1][0]) == frame_numbers(ds[0][0])  # delta 0: one clip


@pytest.mark.parametrize("dataset", ["kinetics", "ssv1", "ssv2", "folder"])
def test_overrides_are_checked_by_name(dataset: str, tmp_path: Path) -> None:
    """Every dataset takes constructor arguments as overrides and names an unknown one; paths and
    labels come together and then no annotation is read (tmp_path holds none)."""
    cfg = small_cfg(tmp_path, tmp_path, dataset)
    with pytest.raises(TypeError, match="unknown argument 'skip_brocken'.*skip_broken"):
        build_dataset(cfg, "test", paths=["a.mp4"], labels=[0], skip_brocken=False)
    with pytest.raises(TypeError, match="override paths and labels together, got only paths"):
        build_dataset(cfg, "test", paths=["a.mp4"])
    ds = build_dataset(cfg, "test", paths=["a.mp4", "b.mp4"], labels=[1, 0], skip_broken=True, num_spatial_crops=1)
    assert (ds.paths, ds.labels, ds.skip_broken, ds.num_views) == (["a.mp4", "b.mp4"], [1, 0], True, 2)


def test_the_test_views_of_other_files_are_the_tests(ssv2_root: Path) -> None:
    """SSv2 over its own frame folders and webm files, given by path, gives the test's items: a
    frame folder is read in name order like its frame list."""
    cfg = small_cfg(ssv2_root, ssv2_root / "frames", "ssv2")
    cfg.TEST.NUM_SPATIAL_CROPS = 1
    test = build_dataset(cfg, "test")
    folders = [str(ssv2_root / "frames" / video) for video in SS]
    views = build_dataset(cfg, "test", paths=folders, labels=test.labels)
    assert views.paths == test.paths == folders and views.frame_paths is None
    for i in range(len(test)):
        assert torch.equal(views[i][0], test[i][0])
    webm = build_dataset(cfg, "test", paths=[str(ssv2_root / "videos" / "1002.webm")], labels=[0])
    assert [frame_numbers(webm[i][0]) for i in range(2)] == [frame_numbers(test[2 + i][0]) for i in range(2)]
