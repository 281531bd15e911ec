"""``benchmark data``: clips/s of the training and test data paths (decode, sample, transform),
in this process and through ``build_loader`` with N workers, for Kinetics videos and SSv1 JPEG
folders; against a naive decoder for videos and against bare JPEG decoding for frame folders.

Besides the time, rows give what a clip costs (clip_costs.py): packets and frames decoded, bytes
sent by the loader, and the loader workers' CPU time; train rows are repeated for each
``--num-samples`` (AUG.NUM_SAMPLE: clips per opened and decoded video).

``--make-inputs DIR`` writes the inputs first (data_inputs.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vov3d.config import CfgNode, config_root, load_config
from vov3d.datasets import build_dataset, build_loader
from vov3d.datasets.decoder import PtsWindow
from vov3d.datasets.multi_clip import Selection, read_frames
from vov3d.datasets.transforms import CropPlan, Normalize

from .clip_costs import clip_counts, loader_cpu_clock
from .common import endless, load_average, markdown_table, median, time_calls

CONFIGS = config_root()
KINETICS_CFG = str(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml")
SSV1_CFG = str(CONFIGS / "SSv1/vov3d/vov3d_M_F16.yaml")
CPU = torch.device("cpu")
COLUMNS = [
    ("path", "path"),
    ("split", "split"),
    ("samples", "samples"),
    ("workers", "workers"),
    ("clips_per_s", "clips/s"),
    ("clips_per_s_per_core", "clips/s/core"),
    ("ms_per_clip", "ms/clip"),
    ("worker_cpu_ms_per_clip", "worker CPU ms/clip"),
    ("packets_per_clip", "packets/clip"),
    ("frames_per_clip", "frames/clip"),
    ("bytes_per_clip", "bytes/clip"),
    ("speedup", "x naive"),
    ("jpeg_share", "JPEG share"),
    ("transform_share", "transform share"),
    ("load", "load"),
]


@dataclass(frozen=True)
class Timing:
    """Untimed and timed repeats of each figure (``timed``: the median of the timed ones)."""

    warmup: int
    repeats: int


@dataclass(frozen=True)
class DataSettings(Timing):
    """What ``run`` measures: the Kinetics and SSv1 configs and the overrides of both, the folder
    ``make_inputs`` (data_inputs.py) wrote, clips per timed repeat, the loader's batch size and
    worker counts, the AUG.NUM_SAMPLE values of the train rows, and torch threads (0: one, as in a
    loader worker)."""

    cfg: str
    ssv1_cfg: str
    opts: list[str]
    inputs: str
    clips: int
    batch_size: int
    workers: list[int]
    num_samples: list[int]
    threads: int = 0


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


def timed(
    fn: Callable[[], Any], clips: int, timing: Timing, cpu: Optional[Callable[[], float]] = None
) -> dict[str, Any]:
    """clips/s and ms/clip of ``fn`` (which makes ``clips`` clips, recorded): median after warm-up; with
    ``cpu`` (a clock of the CPU seconds of the processes doing the work), their CPU ms per clip
    over the timed calls."""
    load = load_average()
    time_calls(fn, timing.warmup, CPU)
    cpu_before = cpu() if cpu is not None else 0.0
    seconds = median(time_calls(fn, timing.repeats, CPU))
    result = {
        "clips": clips,
        "clips_per_s": clips / seconds,
        "ms_per_clip": 1e3 * seconds / clips,
        "load": max(load or 0.0, load_average() or 0.0),
    }
    if cpu is not None:
        result["worker_cpu_ms_per_clip"] = 1e3 * (cpu() - cpu_before) / (clips * timing.repeats)
    return result


def train_items(dataset: Any, clips: int) -> list[int]:
    """The first ``clips`` train items (at most one per listed video)."""
    return list(range(min(clips, dataset.num_videos)))


def in_process(dataset: Any, items: Sequence[int], seed: int, timing: Timing) -> dict[str, Any]:
    """``dataset[i]`` for ``items`` on one core, the same clips on every repeat, with what the
    clips cost (``clip_counts``, counted in an untimed pass first: what is timed stays as it was)."""
    clips, counts = clip_counts(dataset, items, seed)

    def load() -> None:
        dataset.reseed(seed)
        for i in items:
            dataset[i]

    result = timed(load, clips, timing)
    return {**result, "clips_per_s_per_core": result["clips_per_s"], **counts}


def through_loader(cfg: CfgNode, clips: int, settings: DataSettings) -> dict[str, Any]:
    """Train batches of ``build_loader`` in a row, across epochs: what a training loop waits for;
    per core (the workers, or this process without them), with the workers' CPU time and the
    bytes of the frames they send."""
    loader = build_loader(cfg, "train")
    batches = endless(loader)
    frames = next(batches)[0]  # the workers start
    per_batch = len(frames)  # clips: items of AUG.NUM_SAMPLE clips come flattened
    count = max(clips // per_batch, 1)
    cpu = loader_cpu_clock(loader)
    result = timed(lambda: [next(batches) for _ in range(count)], count * per_batch, settings, cpu)
    cores = max(loader.num_workers, 1)
    return {
        **result,
        "clips_per_s_per_core": result["clips_per_s"] / cores,
        "bytes_per_clip": frames.nbytes / per_batch,
    }


def report(rows: list[dict[str, Any]], row: dict[str, Any], columns: Sequence[tuple[str, str]] = COLUMNS) -> None:
    rows.append(row)
    print(markdown_table([row], columns).splitlines()[-1], flush=True)


def train_rows(
    settings: DataSettings,
    rows: list[dict[str, Any]],
    path: str,
    cfg_file: str,
    folder: str,
    prefix: str,
    against: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """The train rows of ``path`` for each ``num_samples``: in this process (one-clip items with
    ``against``'s comparisons with the references) and through the loader with each worker count."""
    for samples in settings.num_samples:
        # Passed only when set: the paper's configs keep 1 (and older trees lack the key).
        opts = {"AUG.NUM_SAMPLE": samples} if samples != 1 else {}
        cfg = dataset_cfg(cfg_file, settings.opts, folder, prefix, **opts)
        train = build_dataset(cfg, "train")
        ours = in_process(train, train_items(train, settings.clips), cfg.RNG_SEED, settings)
        compared = against(ours) if samples == 1 else {}
        report(rows, {"path": path, "split": "train", "samples": samples, "workers": "in-process", **ours, **compared})
        for workers in settings.workers:
            loader_cfg = dataset_cfg(cfg_file, settings.opts, folder, prefix, **opts, **loader_opts(settings, workers))
            result = through_loader(loader_cfg, settings.clips, settings)
            report(rows, {"path": path, "split": "train", "samples": samples, "workers": workers, **result})


def kinetics_rows(settings: DataSettings, rows: list[dict[str, Any]]) -> None:
    """Our train path, the naive decoder on the same clips (as one-clip items), and the test views."""
    folder = os.path.join(settings.inputs, "kinetics")
    cfg = dataset_cfg(settings.cfg, settings.opts, folder, folder)
    train = build_dataset(cfg, "train")
    drawn = draw_clips(train, train_items(train, settings.clips), cfg.RNG_SEED)
    norm = Normalize.from_cfg(cfg)

    def naive() -> None:
        for video, selection, plan in drawn:
            naive_clip(train.paths[video], selection, plan, train.transform.crop_size, norm)

    base = timed(naive, len(drawn), settings)

    def against(ours: dict[str, Any]) -> dict[str, Any]:
        return {"speedup": ours["clips_per_s"] / base["clips_per_s"]}

    train_rows(settings, rows, "kinetics", settings.cfg, folder, folder, against)
    report(rows, {"path": "kinetics naive decoder", "split": "train", "workers": "in-process", **base})
    test = build_dataset(cfg, "test")
    views = views_in_test_order(test, settings.clips)
    report(
        rows,
        {
            "path": "kinetics",
            "split": "test",
            "workers": "in-process",
            **in_process(test, views, cfg.RNG_SEED, settings),
        },
    )


def ssv1_rows(settings: DataSettings, rows: list[dict[str, Any]]) -> None:
    """Our SSv1 train path; bare Pillow decoding of exactly the JPEG files its clips read, and the
    transform alone on the same clips: what is left is our Python overhead."""
    folder = os.path.join(settings.inputs, "ssv1")
    prefix = os.path.join(folder, "20bn-something-something-v1")
    cfg = dataset_cfg(settings.ssv1_cfg, settings.opts, folder, prefix)
    train = build_dataset(cfg, "train")
    drawn = draw_clips(train, train_items(train, settings.clips), cfg.RNG_SEED)
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

    def against(ours: dict[str, Any]) -> dict[str, Any]:
        return {
            "jpeg_share": decode["ms_per_clip"] / ours["ms_per_clip"],
            "transform_share": resize["ms_per_clip"] / ours["ms_per_clip"],
        }

    train_rows(settings, rows, "ssv1 JPEG", settings.ssv1_cfg, folder, prefix, against)
    report(rows, {"path": "ssv1 Pillow decode only", "split": "train", "workers": "in-process", **decode})
    report(rows, {"path": "ssv1 transform only", "split": "train", "workers": "in-process", **resize})


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
