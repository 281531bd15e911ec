"""``resize_videos``: re-encode a folder of videos as H.264 MP4 with a short side of 320, for a
loader that reads short clips at random times (see DATA.md, Resize first)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import av
from tqdm import tqdm

from vov3d.datasets.decoder import VideoDecodeError
from vov3d.datasets.prepare import RANDOM_ACCESS_X264, check_x264_params, parallel, resize_video
from vov3d.datasets.video_files import VIDEO_SUFFIXES, is_video_file
from vov3d.utils.cpus import usable_cpus


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resize_videos.py", description="Resize videos to a short side (default 320) as H.264 MP4."
    )
    parser.add_argument("src", help="folder of videos (searched recursively)")
    parser.add_argument("dst", help="output folder; relative paths are kept, the suffix becomes .mp4")
    parser.add_argument("--short-side", type=int, default=320)
    parser.add_argument(
        "--upscale", action="store_true", help="also enlarge videos whose short side is below --short-side"
    )
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
    parser.add_argument("--jobs", type=int, default=usable_cpus())
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose output exists")
    return parser


def find_videos(src: str, dst: str) -> list[tuple[str, str]]:
    """(source, output) of every video under ``src``, in a stable order."""
    pairs = []
    for folder, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            if is_video_file(name):
                rel = os.path.relpath(os.path.join(folder, name), src)
                pairs.append((os.path.join(folder, name), os.path.join(dst, os.path.splitext(rel)[0] + ".mp4")))
    return pairs


def _resize_one(job: tuple) -> tuple[str, Optional[tuple[int, int]], Optional[str]]:
    """(source, output height and width, error)."""
    src, dst, *settings = job
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        return src, resize_video(src, dst, *settings), None
    except (VideoDecodeError, av.FFmpegError, OSError) as e:
        return src, None, str(e)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Resize every video under SRC into DST (same relative paths, suffix .mp4)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not os.path.isdir(args.src):
        parser.error(f"src: {args.src} is not a folder")
    if args.keyframe_interval < 0:
        parser.error(f"--keyframe-interval: must be 0 (x264's default) or more seconds, got {args.keyframe_interval}")
    try:
        check_x264_params(args.x264_params)
    except ValueError as e:
        parser.error(f"--x264-params: {e}")
    videos = find_videos(args.src, args.dst)
    if not videos:
        parser.error(f"src: {args.src} holds no video files ({', '.join(VIDEO_SUFFIXES)})")
    settings = (args.short_side, args.crf, args.keyframe_interval, args.x264_params, args.upscale)
    jobs = [(src, dst, *settings) for src, dst in videos if args.overwrite or not os.path.exists(dst)]
    failed, small = [], []
    for src, size, error in tqdm(parallel(_resize_one, jobs, args.jobs), total=len(jobs), unit="video"):
        if error:
            failed.append(src)
            tqdm.write(f"FAILED {src}: {error}")
        elif not args.upscale and min(size) < args.short_side:
            small.append(src)
    kept = f", {len(videos) - len(jobs)} already there" if len(jobs) < len(videos) else ""
    print(f"resized {len(jobs) - len(failed)} of {len(jobs)} videos into {args.dst}{kept}")
    if small:
        print(
            f"{len(small)} videos are smaller than --short-side {args.short_side} and keep their size "
            f"(--upscale enlarges them), e.g. {', '.join(small[:3])}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
