"""AUG.NUM_SAMPLE: N clips of one video per training item, of one temporal position (PySlowFast's)
or of one each (AUG.INDEPENDENT_POSITIONS), each the clip its own draws give when read alone, from
one open of the file and one decode of each frame; batches of clips; the config checks and the
mid-epoch resume key."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tests.datasets.helpers import frame_numbers, make_ssv1, make_video
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.config import CfgNode, ConfigError, load_config
from vov3d.config.validation import check_batch_sizes
from vov3d.datasets import build_dataset, build_loader, decoder, frames
from vov3d.datasets.decoder import PtsWindow, PyAVVideo
from vov3d.datasets.multi_clip import overlapping_groups, read_clips, read_frames
from vov3d.datasets.sampler import TrainKey
from vov3d.engine.run_folder import _refuse_another_run
from vov3d.utils.run_layout import RunFolder

AUGMENT = ["AUG.ENABLE", True, "AUG.AA_TYPE", "rand-m9-n2-mstd0.5"]
# How each kind of selection is made: Kinetics by pts window (its default) or by frame index
# (DATA.USE_OFFSET_SAMPLING), SSv1 from JPEG folders.
KINDS = {
    "window": ("kinetics", []),
    "index": ("kinetics", ["DATA.USE_OFFSET_SAMPLING", True]),
    "jpeg": ("ssv1", []),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    kinetics = tmp_path_factory.mktemp("kinetics")
    for i, count in enumerate((40, 25, 90)):
        make_video(kinetics / f"{i}.mp4", count, gop_size=10)
    (kinetics / "3.mp4").write_text("this is not a video\n")
    write_kinetics_csvs(kinetics, [(f"{i}.mp4", i) for i in range(4)])
    ssv1 = tmp_path_factory.mktemp("ssv1")
    make_ssv1(ssv1, {"1001": 30, "1002": 16, "1003": 40})
    return {"kinetics": kinetics, "ssv1": ssv1}


def repeat_cfg(roots: dict[str, Path], kind: str, samples: int, *opts: object) -> CfgNode:
    dataset, extra = KINDS[kind]
    prefix = roots[dataset] / "frames" if dataset == "ssv1" else roots[dataset]
    cfg = small_cfg(roots[dataset], prefix, dataset, *AUGMENT, *extra, *opts)
    cfg.AUG.NUM_SAMPLE, cfg.TRAIN.BATCH_SIZE = samples, 2 * samples
    return cfg


@pytest.mark.parametrize("independent", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_each_clip_is_the_clip_its_draws_give_alone(roots: dict[str, Path], kind: str, independent: bool) -> None:
    """The item's clips: one position (as PySlowFast) or, independent, the positions of all drawn
    one after another; then each clip's scale, crop, flip and RandAugment ops, and each clip's
    frames as reading its selection alone gives them."""
    ds = build_dataset(repeat_cfg(roots, kind, 3, "AUG.INDEPENDENT_POSITIONS", independent), "train")
    positions = 3 if independent else 1
    for video in range(3):
        key = TrainKey(video, 2, 7)
        clips, label, index, meta = ds[key]
        assert clips.shape == (3, 4, 32, 32, 3) and clips.dtype == torch.uint8  # N x T x H x W x 3
        assert (label, index, meta["video_index"], meta["substituted"]) == (video, video, video, -1)
        rng, generator = key.generators()
        with ds.open_video(video) as source:
            selections = [ds.select_frames(source, None, rng) for _ in range(positions)]
        alone = []
        for selection in selections:
            with ds.open_video(video) as source:
                alone.append(read_frames(source, selection))
        for k, clip in enumerate(clips):
            assert torch.equal(clip, ds.transform(alone[k % positions], 0, rng, generator))
        assert not torch.equal(clips[0], clips[1]) and not torch.equal(clips[1], clips[2])
        assert torch.equal(ds[key][0], clips)  # the same key, the same clips


def test_one_sample_is_an_item_of_one_clip(roots: dict[str, Path]) -> None:
    one, two = (build_dataset(repeat_cfg(roots, "window", n), "train") for n in (1, 2))
    assert one[TrainKey(0, 0, 0)][0].shape == (4, 32, 32, 3) == two[TrainKey(0, 0, 0)][0].shape[1:]
    assert build_dataset(repeat_cfg(roots, "window", 2), "val").num_samples == 1
    assert build_dataset(repeat_cfg(roots, "window", 2), "test")[0][0].ndim == one[TrainKey(0, 0, 0)][0].ndim


def test_an_unreadable_video_gives_n_clips_of_another(roots: dict[str, Path]) -> None:
    ds = build_dataset(repeat_cfg(roots, "window", 2), "train")
    clips, label, index, meta = ds[TrainKey(3, 0, 0)]
    assert clips.shape[0] == 2 and index == 3 and meta["substituted"] == 3
    assert label == meta["video_index"] != 3


class Decodes:
    """Files opened and frames decoded (by timestamp) by PyAV readers, counted in every reader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[str] = []
        self.decoded: list[int] = []
        av_open, iter_frames = av.open, decoder.iter_frames

        def counted_open(file: object, *args: object, **kwargs: object) -> av.container.InputContainer:
            self.opened.append(str(file))
            return av_open(file, *args, **kwargs)

        def counted_frames(*args: object, **kwargs: object):
            for ts, frame in iter_frames(*args, **kwargs):
                self.decoded.append(ts)
                yield ts, frame

        monkeypatch.setattr(av, "open", counted_open)
        monkeypatch.setattr(decoder, "iter_frames", counted_frames)


def windows(video: PyAVVideo, spans: list[tuple[float, float]]) -> list[PtsWindow]:
    """Windows from frame time ``start`` to ``end`` (frame units), positions 0, 3, 6, ... and past the end."""
    ticks = video.pts_per_frame
    return [PtsWindow(int(a * ticks), int(b * ticks), np.array([0, 3, 6, 100])) for a, b in spans]


@pytest.mark.parametrize("kind", ["index", "window"])
def test_n_clips_open_the_file_once_and_decode_each_frame_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Overlapping clips are decoded together, each frame once; clips far apart are read one after
    the other in the same open file, skipping what lies between (two seeks); each clip is the one
    its selection gives alone."""
    path = make_video(tmp_path / "v.mp4", 240, gop_size=20)
    with PyAVVideo(path) as video:
        if kind == "index":
            selections = [np.arange(30, 50, 2), np.arange(44, 70, 3), np.array([200, 203, 209, 203]), np.arange(5)]
        else:
            selections = windows(video, [(30.5, 50.2), (44, 70), (200.5, 210), (0, 4)])
    alone = []
    for selection in selections:
        with PyAVVideo(path) as video:
            alone.append(read_frames(video, selection))
            assert len(frame_numbers(alone[-1])) == len(alone[-1])
    counts = Decodes(monkeypatch)
    with PyAVVideo(path) as video:
        together = read_clips(video, selections)
        assert video.decoded_frames == len(counts.decoded)
    assert all(torch.equal(a, b) for a, b in zip(together, alone))
    assert counts.opened == [path]
    assert len(counts.decoded) == len(set(counts.decoded))  # no frame decoded twice
    decoded = sorted(round(ts * float(video._time_base) * 30) for ts in counts.decoded)
    assert decoded[0] == 0 and decoded[-1] <= 211 and not set(range(80, 180)) & set(decoded)  # a seek over the gap


def test_a_video_without_duration_reads_its_windows_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WebM without a duration: windows over every frame from pts 0 on, read in one decode."""
    path = make_video(tmp_path / "v.webm", 60, gop_size=10)
    selections = [PtsWindow(None, None, np.array(p)) for p in ([10, 12, 14], [13, 20, 28], [50, 59, 80])]
    with PyAVVideo(path) as video:
        assert video.pts_per_frame is None
        alone = [frame_numbers(read_frames(video, selection)) for selection in selections]
    assert alone == [[10, 12, 14], [13, 20, 28], [50, 59, 59]]
    counts = Decodes(monkeypatch)
    with PyAVVideo(path) as video:
        assert [frame_numbers(clip) for clip in read_clips(video, selections)] == alone
    assert len(counts.decoded) == len(set(counts.decoded))


@pytest.mark.parametrize("independent", [False, True])
def test_jpeg_frames_are_decoded_once(
    roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch, independent: bool
) -> None:
    """One position: the 4 frames of one clip, read once for 4 clips; positions of their own: the
    files of all 4, each read once."""
    read: list[int] = []
    jpeg_read = frames.JpegFrames._read
    monkeypatch.setattr(frames.JpegFrames, "_read", lambda self, i: read.append(i) or jpeg_read(self, i))
    ds = build_dataset(repeat_cfg(roots, "jpeg", 4, "AUG.INDEPENDENT_POSITIONS", independent), "train")
    clips = ds[TrainKey(2, 0, 0)][0]
    assert clips.shape[0] == 4 and len(read) == len(set(read))
    assert len(read) > 4 if independent else len(read) == 4


def test_overlapping_groups() -> None:
    spans = [(0, 50, 60), (0, 0, 10), (0, 8, 20), (1, 5, 9), (0, 21, 30), (0, 30, 40)]
    assert overlapping_groups(spans) == [[1, 2], [4, 5], [0], [3]]


def test_batches_count_clips_and_an_epoch_has_n_times_the_steps(roots: dict[str, Path]) -> None:
    """TRAIN.BATCH_SIZE clips per batch, BATCH_SIZE / N videos: each video's N clips in a row with
    its label, index and meta; every video once per epoch."""
    cfg = repeat_cfg(roots, "jpeg", 1, "AUG.INDEPENDENT_POSITIONS", True)  # 3 videos; clips of other frames
    assert len(build_loader(cfg, "train")) == 1  # 1 step of 2 clips of 2 videos
    cfg.AUG.NUM_SAMPLE, cfg.TRAIN.BATCH_SIZE = 2, 4
    loader = build_loader(cfg, "train")  # 4 clips of 2 videos per step
    assert loader.sampler.num_batches == 1 == len(loader) and next(iter(loader))[0].shape[0] == 4
    cfg.TRAIN.BATCH_SIZE = 2
    loader = build_loader(cfg, "train")
    assert loader.sampler.num_batches == 3 == len(loader)  # 1 video of 2 clips per step
    batches = list(loader)
    for clips, labels, index, meta in batches:
        assert clips.shape == (2, 4, 32, 32, 3) and clips.dtype == torch.uint8
        assert labels.tolist() == [labels[0].item()] * 2 and index.tolist() == [index[0].item()] * 2
        assert meta["video_index"].tolist() == index.tolist() and meta["substituted"].tolist() == [-1, -1]
        assert not torch.equal(clips[0], clips[1])
    assert sorted(batch[2][0].item() for batch in batches) == [0, 1, 2]


def test_batch_and_sample_count_checks_name_the_keys() -> None:
    with pytest.raises(ConfigError, match="AUG.NUM_SAMPLE = 0 .*must be 1"):
        load_config([], ["AUG.NUM_SAMPLE", 0])
    with pytest.raises(
        ConfigError, match="AUG.NUM_SAMPLE = 2 .*TRAIN.BATCH_SIZE 6 .* = 3 clips, must be a multiple of 2"
    ):
        load_config([], ["NUM_GPUS", 2, "TRAIN.BATCH_SIZE", 6, "AUG.NUM_SAMPLE", 2])
    # A test-only run (a paper config's NUM_SAMPLE with another batch) makes no training batch.
    load_config([], ["NUM_GPUS", 2, "TRAIN.BATCH_SIZE", 6, "AUG.NUM_SAMPLE", 2, "TRAIN.ENABLE", False])
    cfg = load_config([], ["NUM_GPUS", 2, "TRAIN.BATCH_SIZE", 8, "AUG.NUM_SAMPLE", 4])
    with pytest.raises(ConfigError, match="AUG.NUM_SAMPLE.*the processes of torch.distributed\\) = 2 clips"):
        check_batch_sizes(cfg, 4, "the processes of torch.distributed")  # a launcher started 4


def test_a_mid_epoch_checkpoint_needs_the_same_number_of_samples(tmp_path: Path) -> None:
    cfg = load_config([], ["OUTPUT_DIR", str(tmp_path)])
    other = load_config([], ["OUTPUT_DIR", str(tmp_path), "AUG.NUM_SAMPLE", 2])
    path = RunFolder(str(tmp_path)).checkpoint_path(1, 3)
    with pytest.raises(ConfigError, match="AUG.NUM_SAMPLE \\(file 2, run 1\\)"):
        _refuse_another_run(cfg, path, {"cfg": other.dump(), "iteration": 3})
    _refuse_another_run(cfg, path, {"cfg": other.dump()})  # at an epoch's end the epochs may change


def test_sub_batch_norm_splits_must_divide_each_process_training_batch() -> None:
    """BN.NUM_SPLITS is checked with the batch sizes when the cfg is loaded (not at the first
    forward, after the datasets are built), and again for the processes a launcher started."""
    with pytest.raises(ConfigError, match="BN.NUM_SPLITS = 3 .*= 8 clips, into equal sub-batches.*divide 8"):
        load_config([], ["BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", 3, "TRAIN.BATCH_SIZE", 8])
    with pytest.raises(ConfigError, match="BN.NUM_SPLITS = 0 "):
        load_config([], ["BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", 0, "TRAIN.BATCH_SIZE", 8])
    load_config([], ["BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", 3, "TRAIN.ENABLE", False])  # no training batch
    cfg = load_config([], ["BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", 8, "TRAIN.BATCH_SIZE", 16])
    with pytest.raises(ConfigError, match="BN.NUM_SPLITS .*the processes of torch.distributed\\) = 4 clips"):
        check_batch_sizes(cfg, 4, "the processes of torch.distributed")  # a launcher started 4
