"""``benchmark data``: clips/s of the training and test data paths (decode, sample, transform),
in this process and through ``build_loader`` with N workers, for Kinetics videos and SSv1 JPEG
folders; against a naive decoder for videos and against bare JPEG decoding for frame folders.

``--make-inputs DIR`` writes the inputs first: H.264 videos encoded as tools/resize_videos.py
writes them (or with x264's defaults) from real videos (``--source``) or from the motion demo's
moving shapes (10 s, 30 fps, 426x320 by default), with Kinetics CSVs, and SSv1 frame folders of
the same content.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vov3d.config import CfgNode, config_root, load_config
from vov3d.datasets import build_dataset, build_loader
from vov3d.datasets.clip_dataset import Selection, read_frames
from vov3d.datasets.decoder import PtsWindow, PyAVVideo
from vov3d.datasets.encode import write_video
from vov3d.datasets.motion_demo import CLASSES, DemoSpec, render_video
from vov3d.datasets.prepare import RANDOM_ACCESS_X264, resize_video
from vov3d.datasets.transforms import CropPlan, Normalize

from .common import endless, load_average, markdown_table, median, time_calls

CONFIGS = config_root()
KINETICS_CFG = str(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml")
SSV1_CFG = str(CONFIGS / "SSv1/vov3d/vov3d_M_F16.yaml")
FPS = 30
SSV1_FRAMES = 48  # frames per SSv1 folder: its videos are a few seconds long
SSV1_HEIGHT = 100  # SSv1's JPEG frames are 100 pixels high
# train.csv lists every video this many times, so that a loader epoch is long enough for its
# start and end (workers idle while the last batches are consumed) not to dominate the figure.
TRAIN_LIST_REPEATS = 8
CPU = torch.device("cpu")
COLUMNS = [
    ("path", "path"),
    ("split", "split"),
    ("workers", "workers"),
    ("clips_per_s", "clips/s"),
    ("ms_per_clip", "ms/clip"),
    ("speedup", "x naive"),
    ("jpeg_share", "JPEG share"),
    ("transform_share", "transform share"),
    ("load", "load"),
]


@dataclass(frozen=True)
class DataSettings:
    """What ``run`` measures: the Kinetics and SSv1 configs and the overrides of both, the folder
    ``make_inputs`` wrote, clips per timed repeat, the loader's batch size and worker counts,
    untimed and timed repeats, and torch threads (0: one, as in a loader worker)."""

    cfg: str
    ssv1_cfg: str
    opts: list[str]
    inputs: str
    clips: int
    batch_size: int
    workers: list[int]
    warmup: int
    repeats: int
    threads: int = 0


ENCODINGS = {  # --encoding: (keyframe seconds, x264 options) given to resize_video
    "tool": (1.0, RANDOM_ACCESS_X264),  # tools/resize_videos.py's defaults
    "x264": (0.0, ""),  # x264's defaults: a keyframe every 250 frames, B-frames referenced
}


def make_inputs(
    folder: str,
    videos: int = 8,
    seconds: float = 10.0,
    size: tuple[int, int] = (320, 426),
    encoding: str = "tool",
    sources: Sequence[str] = (),
) -> None:
    """Write ``folder/kinetics`` (``videos/NNN.mp4`` and the three CSVs of ``videos`` entries) and
    ``folder/ssv1`` (the SSv1 annotation files, frame lists and ``20bn-something-something-v1/NNN``
    folders of the first SSV1_FRAMES frames of the same content, SSV1_HEIGHT pixels high as in
    SSv1). The Kinetics videos are re-encoded by tools/resize_videos.py's ``resize_video`` to the
    short side of ``size`` (height, width) with ``encoding`` (see ENCODINGS), from ``sources``
    (real videos, listed in turn) or else from ``videos`` synthetic ones of ``size`` and
    ``seconds`` (moving shapes on textured, noisy backgrounds). Skips the work when a previous
    call finished (the annotation files are written last)."""
    kinetics, ssv1 = os.path.join(folder, "kinetics"), os.path.join(folder, "ssv1")
    if os.path.isfile(os.path.join(kinetics, "test.csv")) and os.path.isfile(os.path.join(ssv1, "val.csv")):
        return
    keyframe_seconds, x264_params = ENCODINGS[encoding]
    count = max(int(round(seconds * FPS)), 1)
    spec = DemoSpec(height=size[0], width=size[1], fps=FPS, min_frames=count, max_frames=count)
    rng = np.random.default_rng(0)
    files = min(videos, len(sources)) if sources else videos
    frame_rows = ["original_vido_id video_id frame_id path labels"]
    os.makedirs(os.path.join(kinetics, "videos"), exist_ok=True)
    for i in range(files):
        video_id = f"{i:03d}"
        dst = os.path.join(kinetics, "videos", f"{video_id}.mp4")
        if sources:
            src = sources[i]
            with PyAVVideo(src) as video:
                frames = [video.rgb(frame) for _, frame in itertools.islice(video.frames(), SSV1_FRAMES)]
        else:
            src = os.path.join(folder, f"source_{video_id}.mp4")
            frames = render_video(i % len(CLASSES), rng, spec)
            write_video(src, frames, FPS)
        resize_video(src, dst, min(size), keyframe_seconds=keyframe_seconds, x264_params=x264_params, upscale=True)
        if not sources:
            os.remove(src)
        os.makedirs(os.path.join(ssv1, "20bn-something-something-v1", video_id), exist_ok=True)
        for k, frame in enumerate(frames[:SSV1_FRAMES]):
            name = f"{video_id}/{k + 1:05d}.jpg"
            height, width = frame.shape[:2]
            ssv1_size = (round(width * min(SSV1_HEIGHT, height) / height), min(SSV1_HEIGHT, height))
            image = Image.fromarray(frame).resize(ssv1_size, Image.BILINEAR)
            image.save(os.path.join(ssv1, "20bn-something-something-v1", name), quality=90)
            frame_rows.append(f'{video_id} {i} {k} {name} ""')
    _write(os.path.join(ssv1, "something-something-v1-labels.csv"), [f"action {c}" for c in range(len(CLASSES))])
    split = [f"{i % files:03d};action {i % len(CLASSES)}" for i in range(videos)]
    for name in ("something-something-v1-train.csv", "something-something-v1-validation.csv", "train.csv"):
        _write(os.path.join(ssv1, name), split if name.startswith("some") else frame_rows)
    _write(os.path.join(ssv1, "val.csv"), frame_rows)
    lines = [f"videos/{i % files:03d}.mp4 {i % len(CLASSES)}" for i in range(videos)]
    for name in ("train.csv", "val.csv", "test.csv"):
        _write(os.path.join(kinetics, name), lines * (TRAIN_LIST_REPEATS if name == "train.csv" else 1))


def _write(path: str, lines: Sequence[str]) -> None:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def naive_frames(path: str, selection: Selection) -> torch.Tensor:
    """The frames ``selection`` names as float T x H x W x 3, the way old video trainers read them:
    decode from the start of the video (no seeking) up to the last needed frame, and convert each
    needed frame to RGB (a new converter per frame) and then to float."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1  # as our decoder: loader workers decode videos in parallel
        decoded = container.decode(stream)
        if isinstance(selection, PtsWindow):
            picks = _naive_window(decoded, selection)
        else:
            picks = _naive_indexed(decoded, np.asarray(selection).tolist())
        return torch.stack([torch.from_numpy(frame.to_ndarray(format="rgb24")).float() for frame in picks])


def _naive_indexed(decoded: Iterable[av.VideoFrame], indices: list[int]) -> list[av.VideoFrame]:
    """Frames by counting; past the end, the last frame."""
    wanted, frames = set(indices), {}
    for i, frame in enumerate(decoded):
        if i in wanted:
            frames[i] = frame
        if i == max(indices):
            break
    return [frames[min(i, max(frames))] for i in indices]


def _naive_window(decoded: Iterable[av.VideoFrame], window: PtsWindow) -> list[av.VideoFrame]:
    """The original's rule: the frames from the window's first pts (0 without one) up to its last
    and the first frame after it, sorted by pts, at positions clamped to them."""
    kept = {}
    for frame in decoded:
        if frame.pts < (0 if window.first is None else window.first):
            continue
        kept[frame.pts] = frame
        if window.last is not None and frame.pts > window.last:
            break
    listed = [kept[pts] for pts in sorted(kept)]
    return [listed[min(p, len(listed) - 1)] for p in np.asarray(window.positions).tolist()]


def naive_clip(path: str, selection: Selection, plan: CropPlan, crop: int, norm: Normalize) -> torch.Tensor:
    """The network's input of the clip ``plan`` crops (3 x T x crop x crop), resized, cropped and
    normalised in float in the loader, the way older video trainers made it."""
    clip = naive_frames(path, selection).permute(0, 3, 1, 2)
    clip = F.interpolate(clip, size=(plan.height, plan.width), mode="bilinear", align_corners=False)
    clip = clip[..., plan.top : plan.top + crop, plan.left : plan.left + crop]
    if plan.flip:
        clip = clip.flip(-1)
    mean, std = torch.tensor(norm.mean).view(1, 3, 1, 1), torch.tensor(norm.std).view(1, 3, 1, 1)
    clip = (clip / 255 - mean) / std
    if norm.bgr:
        clip = clip.flip(1)
    return clip.transpose(0, 1).contiguous()


def draw_clips(dataset: Any, items: Sequence[int], seed: int) -> list[tuple[int, Selection, CropPlan]]:
    """(video, frames selected, crop) of the training clips that ``dataset[i]`` for ``items`` gives
    after ``dataset.reseed(seed)``: the same draws from the same generator, in the same order."""
    rng = np.random.default_rng(seed)
    clips = []
    for video in items:
        with dataset.open_video(video) as source:
            selection = dataset.select_frames(source, None, rng)
            height, width = source.get_frames([0]).shape[1:3]
        clips.append((video, selection, dataset.transform.plan(height, width, 0, rng)))
    return clips


def views_in_test_order(dataset: Any, count: int) -> list[int]:
    """About ``count`` test items: every spatial crop of clips spread over the videos and temporal
    views, the crops of a clip in a row, as a test pass reads them (they share one decode)."""
    crops = dataset.num_spatial_crops
    total = len(dataset) // crops
    clips = sorted({int(i) for i in np.linspace(0, total - 1, min(max(round(count / crops), 1), total)).round()})
    return [clip * crops + crop for clip in clips for crop in range(crops)]


def dataset_cfg(path: str, opts: Sequence[str], data_dir: str, prefix: str, **extra: Any) -> CfgNode:
    """Config ``path`` reading the benchmark inputs in one CPU process; ``opts`` override it."""
    pairs = {"NUM_GPUS": 0, "DATA.PATH_TO_DATA_DIR": data_dir, "DATA.PATH_PREFIX": prefix, **extra}
    fixed = [str(token) for pair in pairs.items() for token in pair]
    return load_config([path], fixed + list(opts))


def timed(fn: Callable[[], Any], clips: int, settings: DataSettings) -> dict[str, Any]:
    """clips/s and ms/clip of ``fn`` (which makes ``clips`` clips): median after warm-up."""
    load = load_average()
    time_calls(fn, settings.warmup, CPU)
    seconds = median(time_calls(fn, settings.repeats, CPU))
    return {
        "clips_per_s": clips / seconds,
        "ms_per_clip": 1e3 * seconds / clips,
        "load": max(load or 0.0, load_average() or 0.0),
    }


def in_process(dataset: Any, items: Sequence[int], seed: int, settings: DataSettings) -> dict[str, Any]:
    """``dataset[i]`` for ``items``; the same clips on every repeat."""

    def load() -> None:
        dataset.reseed(seed)
        for i in items:
            dataset[i]

    return timed(load, len(items), settings)


def through_loader(cfg: CfgNode, clips: int, settings: DataSettings) -> dict[str, Any]:
    """Train batches of ``build_loader`` in a row, across epochs: what a training loop waits for."""
    loader = build_loader(cfg, "train")
    batches = endless(loader)
    count = max(clips // loader.batch_size, 1)
    next(batches)  # the workers start
    return timed(lambda: [next(batches) for _ in range(count)], count * loader.batch_size, settings)


def report(rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
    rows.append(row)
    print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)


def kinetics_rows(settings: DataSettings, rows: list[dict[str, Any]]) -> None:
    """Our train path, the naive decoder on the same clips, the loader, and the test views."""
    folder = os.path.join(settings.inputs, "kinetics")
    cfg = dataset_cfg(settings.cfg, settings.opts, folder, folder)
    train = build_dataset(cfg, "train")
    items = list(range(min(settings.clips, train.num_videos)))
    ours = in_process(train, items, cfg.RNG_SEED, settings)
    drawn = draw_clips(train, items, cfg.RNG_SEED)
    norm = Normalize.from_cfg(cfg)

    def naive() -> None:
        for video, selection, plan in drawn:
            naive_clip(train.paths[video], selection, plan, train.transform.crop_size, norm)

    base = timed(naive, len(drawn), settings)
    report(
        rows,
        {
            "path": "kinetics",
            "split": "train",
            "workers": "in-process",
            **ours,
            "speedup": ours["clips_per_s"] / base["clips_per_s"],
        },
    )
    report(rows, {"path": "kinetics naive decoder", "split": "train", "workers": "in-process", **base})
    for workers in settings.workers:
        loader_cfg = dataset_cfg(settings.cfg, settings.opts, folder, folder, **loader_opts(settings, workers))
        result = through_loader(loader_cfg, settings.clips, settings)
        report(rows, {"path": "kinetics", "split": "train", "workers": workers, **result})
    test = build_dataset(cfg, "test")
    report(
        rows,
        {
            "path": "kinetics",
            "split": "test",
            "workers": "in-process",
            **in_process(test, views_in_test_order(test, settings.clips), cfg.RNG_SEED, settings),
        },
    )


def ssv1_rows(settings: DataSettings, rows: list[dict[str, Any]]) -> None:
    """Our SSv1 train path; bare Pillow decoding of exactly the JPEG files its clips read, and the
    transform alone on the same clips: what is left is our Python overhead."""
    folder = os.path.join(settings.inputs, "ssv1")
    prefix = os.path.join(folder, "20bn-something-something-v1")
    cfg = dataset_cfg(settings.ssv1_cfg, settings.opts, folder, prefix)
    train = build_dataset(cfg, "train")
    items = list(range(min(settings.clips, train.num_videos)))
    ours = in_process(train, items, cfg.RNG_SEED, settings)
    drawn = draw_clips(train, items, cfg.RNG_SEED)
    files = [[train.frame_paths[v][k] for k in np.unique(i)] for v, i, _ in drawn]
    decoded = []
    for video, indices, plan in drawn:
        with train.open_video(video) as source:
            decoded.append((read_frames(source, indices), plan))

    def jpeg() -> None:
        for clip in files:
            for file in clip:
                with Image.open(file) as image:
                    np.asarray(image.convert("RGB"))

    def transform() -> None:
        for frames, plan in decoded:
            train.transform.apply(frames, plan)

    decode, resize = timed(jpeg, len(files), settings), timed(transform, len(decoded), settings)
    report(
        rows,
        {
            "path": "ssv1 JPEG",
            "split": "train",
            "workers": "in-process",
            **ours,
            "jpeg_share": decode["ms_per_clip"] / ours["ms_per_clip"],
            "transform_share": resize["ms_per_clip"] / ours["ms_per_clip"],
        },
    )
    report(rows, {"path": "ssv1 Pillow decode only", "split": "train", "workers": "in-process", **decode})
    report(rows, {"path": "ssv1 transform only", "split": "train", "workers": "in-process", **resize})
    for workers in settings.workers:
        loader_cfg = dataset_cfg(settings.ssv1_cfg, settings.opts, folder, prefix, **loader_opts(settings, workers))
        result = through_loader(loader_cfg, settings.clips, settings)
        report(rows, {"path": "ssv1 JPEG", "split": "train", "workers": workers, **result})


def loader_opts(settings: DataSettings, workers: int) -> dict[str, Any]:
    return {
        "DATA_LOADER.NUM_WORKERS": workers,
        "TRAIN.BATCH_SIZE": settings.batch_size,
        "DATA_LOADER.PIN_MEMORY": False,
    }


def run(settings: DataSettings) -> dict[str, Any]:
    """Every row of the data benchmark, on inputs written by ``make_inputs``."""
    torch.set_num_threads(settings.threads or 1)  # a loader worker's setting
    print(markdown_table([], COLUMNS), flush=True)
    rows: list[dict[str, Any]] = []
    kinetics_rows(settings, rows)
    ssv1_rows(settings, rows)
    return {"settings": asdict(settings), "rows": rows, "table": markdown_table(rows, COLUMNS)}
