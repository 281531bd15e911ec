"""Data preparation, with PyAV only (no ffmpeg binary): resize Kinetics videos to a short side
of 320, extract SSv2 frames at 30 fps, check that videos can be read.

The commands around these functions are in ``vov3d/cli`` (resize_videos, extract_frames,
make_ssv1_lists, scan_dataset); ``tools/*.py`` are thin wrappers around those.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Callable, Optional

import av
import av.logging
from PIL import Image

from vov3d.utils.atomic import atomic_path

from .decoder import PyAVVideo, VideoDecodeError

_TIME_BASE = Fraction(1, 90000)  # fine enough to keep every source timestamp


def parallel(fn: Callable, items: Iterable, jobs: int) -> Iterator:
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
    upscale: bool = False,
) -> tuple[int, int]:
    """Re-encode ``src`` as H.264 MP4 with its shorter side ``short_side`` (even sizes), keeping
    every frame and its timestamp; audio is dropped. Written to a temporary name, then renamed.
    Returns the output (height, width): a video whose short side is already below ``short_side``
    keeps its size unless ``upscale`` (enlarging adds no detail, only bytes and decoding time).

    Encoded for a loader that reads short clips at random times: a keyframe every
    ``keyframe_seconds`` (0: x264's default, every 250 frames) to seek close to a clip, and
    ``x264_params`` (``""``: x264's defaults). BENCHMARKS.md measures both."""
    options = {"crf": str(crf), "preset": "veryfast"}
    if x264_params:
        options["x264-params"] = x264_params
    with atomic_path(dst, suffix=".part.mp4") as tmp, PyAVVideo(src) as video, av.open(tmp, "w") as out:
        height, width = video.size
        scale = short_side / min(height, width) if upscale or min(height, width) > short_side else 1.0
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
    return out_h, out_w


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


def ssv2_frame_name(video_id: str, k: int) -> str:
    """The file of frame ``k`` (from 1) of a video, as PySlowFast's SSv2 extraction names it."""
    return f"{video_id}_{k:06d}.jpg"


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
            image.save(os.path.join(out_dir, ssv2_frame_name(name, count)), quality=quality)

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


def extract_video(video_path: str, frame_root: str, video_id: str, fps: float = 30, quality: int = 95) -> list[str]:
    """The frames of ``video_id`` (paths relative to ``frame_root``), extracted unless its folder
    exists. Frames are written to the hidden folder ``.{id}.part`` and renamed when complete, so a
    folder named after the video is always whole and an interrupted run starts that video again."""
    folder = os.path.join(frame_root, video_id)
    if os.path.isdir(folder) and not any(f.endswith(".jpg") for f in os.listdir(folder)):
        os.rmdir(folder)  # an empty folder is no extraction (OSError, reported, if it holds other files)
    if not os.path.isdir(folder):
        partial = os.path.join(frame_root, f".{video_id}.part")
        shutil.rmtree(partial, ignore_errors=True)
        extract_frames(video_path, partial, video_id, fps, quality)
        os.replace(partial, folder)
    return [f"{video_id}/{f}" for f in sorted(os.listdir(folder)) if f.endswith(".jpg")]


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
