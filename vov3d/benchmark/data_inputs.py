"""The inputs of ``benchmark data`` and ``benchmark keyframes`` (``make_inputs``): Kinetics videos
with their CSVs, and SSv1 frame folders of the same content. The videos are H.264 encoded as
tools/resize_videos.py writes them (or with x264's defaults) from real videos (``--source``) or
from the motion demo's moving shapes (10 s, 30 fps, 426x320 by default), or the real videos
copied as users download them.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Sequence
from typing import Optional

import numpy as np
from PIL import Image

from vov3d.datasets.decoder import PyAVVideo
from vov3d.datasets.encode import write_video
from vov3d.datasets.motion_demo import CLASSES, DemoSpec, render_video
from vov3d.datasets.prepare import RANDOM_ACCESS_X264, resize_video

FPS = 30
SSV1_FRAMES = 48  # frames per SSv1 folder: its videos are a few seconds long
SSV1_HEIGHT = 100  # SSv1's JPEG frames are 100 pixels high
# train.csv lists every video this many times, so that a loader epoch is long enough for its
# start and end (workers idle while the last batches are consumed) not to dominate the figure.
TRAIN_LIST_REPEATS = 8

# --encoding: (keyframe seconds, x264 options) given to resize_video, or None: the sources copied
ENCODINGS: dict[str, Optional[tuple[float, str]]] = {
    "tool": (1.0, RANDOM_ACCESS_X264),  # tools/resize_videos.py's defaults
    "x264": (0.0, ""),  # x264's defaults: a keyframe every 250 frames, B-frames referenced
    "original": None,  # as users download them (--source only)
}


def make_inputs(
    folder: str,
    videos: int = 8,
    seconds: float = 10.0,
    size: tuple[int, int] = (320, 426),
    encoding: Optional[tuple[float, str]] = ENCODINGS["tool"],
    sources: Sequence[str] = (),
) -> None:
    """Write ``folder/kinetics`` (``videos/NNN.mp4`` and the three CSVs of ``videos`` entries) and
    ``folder/ssv1`` (the SSv1 annotation files, frame lists and ``20bn-something-something-v1/NNN``
    folders of the first SSV1_FRAMES frames of the same content, SSV1_HEIGHT pixels high as in
    SSv1). The Kinetics videos are re-encoded by tools/resize_videos.py's ``resize_video`` to the
    short side of ``size`` (height, width) with ``encoding`` (keyframe seconds and x264 options,
    see ENCODINGS), from ``sources`` (real videos, listed in turn) or else from ``videos``
    synthetic ones of ``size`` and ``seconds`` (moving shapes on textured, noisy backgrounds);
    ``encoding`` None copies the ``sources`` unchanged (keeping their suffix). Skips the work when
    a previous call finished (the annotation files are written last)."""
    kinetics, ssv1 = os.path.join(folder, "kinetics"), os.path.join(folder, "ssv1")
    if os.path.isfile(os.path.join(kinetics, "test.csv")) and os.path.isfile(os.path.join(ssv1, "val.csv")):
        return
    if encoding is None and not sources:
        raise ValueError("--encoding original copies the real videos as they are: give them with --source")
    count = max(int(round(seconds * FPS)), 1)
    spec = DemoSpec(height=size[0], width=size[1], fps=FPS, min_frames=count, max_frames=count)
    rng = np.random.default_rng(0)
    files = min(videos, len(sources)) if sources else videos
    frame_rows = ["original_vido_id video_id frame_id path labels"]
    names = []  # of the Kinetics videos
    os.makedirs(os.path.join(kinetics, "videos"), exist_ok=True)
    for i in range(files):
        video_id = f"{i:03d}"
        if sources:
            src = sources[i]
            with PyAVVideo(src) as video:
                frames = [video.rgb(frame) for _, frame in itertools.islice(video.frames(), SSV1_FRAMES)]
        else:
            src = os.path.join(folder, f"source_{video_id}.mp4")
            frames = render_video(i % len(CLASSES), rng, spec)
            write_video(src, frames, FPS)
        names.append(video_id + (".mp4" if encoding else os.path.splitext(src)[1]))
        dst = os.path.join(kinetics, "videos", names[-1])
        if encoding is None:
            shutil.copyfile(src, dst)
        else:
            keyframe_seconds, x264_params = encoding
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
    lines = [f"videos/{names[i % files]} {i % len(CLASSES)}" for i in range(videos)]
    for name in ("train.csv", "val.csv", "test.csv"):
        _write(os.path.join(kinetics, name), lines * (TRAIN_LIST_REPEATS if name == "train.csv" else 1))


def _write(path: str, lines: Sequence[str]) -> None:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
