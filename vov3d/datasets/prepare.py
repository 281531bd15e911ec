"""Data preparation, with PyAV only (no ffmpeg binary): resize Kinetics videos to a short side
of 320, extract SSv2 frames at 30 fps with PySlowFast's frame lists, list unreadable videos.

Each tool is a ``*_main(argv)`` function; ``tools/*.py`` are thin wrappers around them.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from typing import Callable, Optional

import av
import av.logging
from PIL import Image

from .annotations import FRAME_LIST_HEADER
from .decoder import PyAVVideo, VideoDecodeError

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")
_TIME_BASE = Fraction(1, 90000)  # fine enough to keep every source timestamp


def _parallel(fn: Callable, items: Iterable, jobs: int) -> Iterator:
    """``fn`` over ``items`` in ``jobs`` processes (in this one for 1), results in any order."""
    if jobs <= 1:
        yield from map(fn, items)
        return
    with multiprocessing.Pool(jobs) as pool:
        yield from pool.imap_unordered(fn, items)


# x264 options for random access: three B-frames between P-frames that no frame refers to (x264
# makes some B-frames references by default), so the loader decodes, between a keyframe and the
# last frame of a clip, only the I- and P-frames and the B-frames the clip shows.
RANDOM_ACCESS_X264 = "bframes=3:b-adapt=0:b-pyramid=none"


def resize_video(
    src: str,
    dst: str,
    short_side: int = 320,
    crf: int = 23,
    keyframe_seconds: float = 1.0,
    x264_params: str = RANDOM_ACCESS_X264,
) -> None:
    """Re-encode ``src`` as H.264 MP4 with its shorter side ``short_side`` (even sizes), keeping
    every frame and its timestamp; audio is dropped. Written to a temporary name, then renamed.

    Encoded for a loader that reads short clips at random times: a keyframe every
    ``keyframe_seconds`` (0: x264's default, every 250 frames) to seek close to a clip, and
    ``x264_params`` (``""``: x264's defaults). BENCHMARKS.md measures both."""
    tmp = f"{dst}.part.mp4"
    options = {"crf": str(crf), "preset": "veryfast"}
    if x264_params:
        options["x264-params"] = x264_params
    try:
        with PyAVVideo(src) as video, av.open(tmp, "w") as out:
            height, width = video.size
            scale = short_side / min(height, width)
            out_h, out_w = (max(2, int(round(x * scale / 2)) * 2) for x in (height, width))
            rate = Fraction(video.fps).limit_denominator(100000)
            stream = out.add_stream("libx264", rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = out_w, out_h, "yuv420p"
            stream.codec_context.time_base = stream.time_base = _TIME_BASE
            if keyframe_seconds > 0:
                stream.codec_context.gop_size = max(1, round(video.fps * keyframe_seconds))
            last = -1
            for seconds, frame in video.frames():
                # BT.601 limited range: what players assume for untagged video
                small = video.reformatter.reformat(
                    frame,
                    out_w,
                    out_h,
                    "yuv420p",
                    interpolation="BICUBIC",
                    dst_colorspace="ITU601",
                    dst_color_range="MPEG",
                    threads=1,
                )
                last = small.pts = max(int(round(seconds / _TIME_BASE)), last + 1)
                small.time_base = _TIME_BASE
                small.pict_type = av.video.frame.PictureType.NONE  # else x264 copies the source's frame types
                out.mux(stream.encode(small))
            out.mux(stream.encode(None))
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_x264_params(params: str) -> None:
    """Raise ValueError naming the options x264 rejects: FFmpeg only logs a warning and encodes
    without them."""
    context = av.CodecContext.create("libx264", "w")
    context.width, context.height, context.pix_fmt, context.time_base = 64, 64, "yuv420p", Fraction(1, 30)
    context.options = {"x264-params": params}
    level = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs:
            context.open()
    finally:
        av.logging.set_level(level)
    rejected = [message.strip().rstrip(".") for _, _, message in logs if "Error parsing option" in message]
    if rejected:
        raise ValueError(f"x264 rejects {params!r}: {'; '.join(rejected)}")


def _resize_one(job: tuple[str, str, int, int, float, str]) -> tuple[str, Optional[str]]:
    src, dst, *settings = job
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        resize_video(src, dst, *settings)
        return src, None
    except (VideoDecodeError, av.FFmpegError, OSError) as e:
        return src, str(e)


def resize_main(argv: Optional[Sequence[str]] = None) -> int:
    """Resize every video under SRC into DST (same relative paths, suffix .mp4)."""
    parser = argparse.ArgumentParser(description="Resize videos to a short side (default 320) as H.264 MP4.")
    parser.add_argument("src", help="folder of videos (searched recursively)")
    parser.add_argument("dst", help="output folder; relative paths are kept, the suffix becomes .mp4")
    parser.add_argument("--short-side", type=int, default=320)
    parser.add_argument("--crf", type=int, default=23, help="x264 quality (lower is better and larger)")
    parser.add_argument(
        "--keyframe-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between keyframes (0: x264's default, 250 frames)",
    )
    parser.add_argument(
        "--x264-params",
        default=RANDOM_ACCESS_X264,
        help=f"x264 options (default {RANDOM_ACCESS_X264!r}: unreferenced B-frames; '' for x264's defaults)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose output exists")
    args = parser.parse_args(argv)
    if args.keyframe_interval < 0:
        parser.error(f"--keyframe-interval: must be 0 (x264's default) or more seconds, got {args.keyframe_interval}")
    try:
        check_x264_params(args.x264_params)
    except ValueError as e:
        parser.error(f"--x264-params: {e}")
    settings = (args.short_side, args.crf, args.keyframe_interval, args.x264_params)
    jobs = []
    for folder, _, files in os.walk(args.src):
        for name in sorted(files):
            if name.lower().endswith(VIDEO_SUFFIXES):
                rel = os.path.relpath(os.path.join(folder, name), args.src)
                dst = os.path.join(args.dst, os.path.splitext(rel)[0] + ".mp4")
                if args.overwrite or not os.path.exists(dst):
                    jobs.append((os.path.join(folder, name), dst, *settings))
    failed = [(src, error) for src, error in _parallel(_resize_one, jobs, args.jobs) if error]
    for src, error in failed:
        print(f"FAILED {src}: {error}")
    print(f"resized {len(jobs) - len(failed)} of {len(jobs)} videos into {args.dst}")
    return 1 if failed else 0


def extract_frames(video_path: str, out_dir: str, name: str, fps: float = 30, quality: int = 95) -> int:
    """Write ``{out_dir}/{name}_{k:06d}.jpg`` (k from 1) at ``fps``: frame k shows what is on screen
    at ``(k - 1) / fps``, as ``ffmpeg -r 30`` does. Returns the number of frames written."""
    os.makedirs(out_dir, exist_ok=True)
    count, prev, last_t = 0, None, 0.0
    with PyAVVideo(video_path) as video:
        half = 0.5 / video.fps

        def write(frame: av.VideoFrame) -> None:
            nonlocal count
            count += 1
            image = Image.fromarray(video.rgb(frame))
            image.save(os.path.join(out_dir, f"{name}_{count:06d}.jpg"), quality=quality)

        for t, frame in video.frames():
            prev = frame if prev is None else prev  # the first frame also stands for earlier times
            while count / fps + half < t:
                write(prev)
            prev, last_t = frame, t
        if prev is None:
            raise VideoDecodeError(f"{video_path}: no frame could be decoded")
        while (count + 0.5) / fps < last_t + 1 / video.fps:  # the last frame lasts one period
            write(prev)
    return count


def _extract_one(job: tuple[str, str, str, float, int]) -> tuple[str, Optional[str], list[str]]:
    """(video id, error, frame paths relative to the frame root)."""
    video_path, frame_root, video_id, fps, quality = job
    folder = os.path.join(frame_root, video_id)
    try:
        existing = sorted(f for f in os.listdir(folder) if f.endswith(".jpg")) if os.path.isdir(folder) else []
        if not existing:
            extract_frames(video_path, folder, video_id, fps, quality)
            existing = sorted(f for f in os.listdir(folder) if f.endswith(".jpg"))
        return video_id, None, [f"{video_id}/{f}" for f in existing]
    except (VideoDecodeError, av.FFmpegError, OSError) as e:
        return video_id, str(e), []


def extract_main(argv: Optional[Sequence[str]] = None) -> int:
    """Extract SSv2 frames for the train and validation splits and write train.csv / val.csv."""
    parser = argparse.ArgumentParser(description="Extract Something-Something V2 frames and frame lists.")
    parser.add_argument("--videos", required=True, help="folder of the {id}.webm files")
    parser.add_argument("--annotations", required=True, help="folder of something-something-v2-*.json")
    parser.add_argument("--frames", required=True, help="output frame root (use it as DATA.PATH_PREFIX)")
    parser.add_argument("--lists", help="where train.csv / val.csv go (default: --annotations)")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    failed = 0
    for split, list_name in (("train", "train.csv"), ("validation", "val.csv")):
        with open(os.path.join(args.annotations, f"something-something-v2-{split}.json"), encoding="utf-8") as f:
            ids = [str(entry["id"]) for entry in json.load(f)]
        jobs = [(os.path.join(args.videos, f"{v}.webm"), args.frames, v, args.fps, args.quality) for v in ids]
        frames = {}
        for video_id, error, paths in _parallel(_extract_one, jobs, args.jobs):
            if error:
                failed += 1
                print(f"FAILED {video_id}: {error}")
            frames[video_id] = paths
        rows = [FRAME_LIST_HEADER]
        for number, video_id in enumerate(v for v in ids if frames[v]):
            rows += [f'{video_id} {number} {k} {path} ""' for k, path in enumerate(frames[video_id])]
        out = os.path.join(args.lists or args.annotations, list_name)
        with open(out, "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
        print(f"{split}: frames of {sum(1 for v in ids if frames[v])} of {len(ids)} videos, list {out}")
    return 1 if failed else 0


_scan_dataset = None  # the dataset being scanned; forked workers inherit it


def _scan_init(dataset: object) -> None:
    global _scan_dataset
    _scan_dataset = dataset


def check_video(dataset: object, index: int, full: bool) -> Optional[str]:
    """Why video ``index`` of ``dataset`` is unreadable, or None. Quick: open it and decode the
    first and last frames; full: decode every frame."""
    try:
        with dataset.open_video(index) as video:
            if full and isinstance(video, PyAVVideo):
                decoded = sum(1 for _ in video.frames())
                if decoded < video.num_frames - 2:
                    return f"{video.path}: only {decoded} of the {video.num_frames} frames its header promises"
            else:
                video.get_frames(range(video.num_frames) if full else [0, video.num_frames - 1])
    except VideoDecodeError as e:
        return str(e)
    return None


def _scan_one(job: tuple[int, bool]) -> Optional[str]:
    return check_video(_scan_dataset, *job)


def scan_main(argv: Optional[Sequence[str]] = None) -> int:
    """Build the datasets of a config and list every video that cannot be read."""
    from vov3d.config import ConfigError, load_config

    from .build import build_dataset

    parser = argparse.ArgumentParser(description="List the unreadable videos of a dataset config.")
    parser.add_argument("--cfg", dest="cfg_files", nargs="+", required=True, metavar="FILE", help="config file(s)")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], choices=["train", "val", "test"])
    parser.add_argument("--full", action="store_true", help="decode every frame (slow; finds more damage)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", help="also write the unreadable ones here, one 'path: reason' per line")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], metavar="KEY VALUE", help="config overrides")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.cfg_files, args.opts)
    except ConfigError as e:
        print(f"scan_dataset: config error: {e}")
        return 2
    bad, seen = [], set()
    for split in args.splits:
        dataset = build_dataset(cfg, split)
        todo = [(i, args.full) for i in range(dataset.num_videos) if dataset.paths[i] not in seen]
        seen.update(dataset.paths)
        _scan_init(dataset)  # forked workers inherit it
        results = [r for r in _parallel(_scan_one, todo, args.jobs) if r]
        print(f"{split}: {len(results)} of {len(todo)} videos unreadable")
        bad += sorted(results)
    for line in bad:
        print(line)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in bad))
    return 1 if bad else 0
