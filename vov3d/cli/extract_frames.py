"""``extract_frames``: Something-Something V2 frames at 30 fps and PySlowFast's frame lists.

Everything that can be wrong with the command line (folders, annotation files) is checked before
any video is decoded; frame lists are replaced only by lists that hold the split's videos.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import av
from tqdm import tqdm

from vov3d.cli.frame_lists import check_and_read_splits, write_lists
from vov3d.datasets.decoder import VideoDecodeError
from vov3d.datasets.prepare import extract_video, parallel, ssv2_frame_name
from vov3d.utils.cpus import usable_cpus

FIRST_FRAME = "{id}/" + ssv2_frame_name("{id}", 1)  # named in the list row of a video without frames
REMEDY = "Replace those videos and run this command again: only the videos without frames are extracted."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extract_frames.py", description="Extract Something-Something V2 frames and frame lists."
    )
    parser.add_argument("--videos", required=True, help="folder of the {id}.webm files")
    parser.add_argument("--annotations", required=True, help="folder of something-something-v2-*.json")
    parser.add_argument("--frames", required=True, help="output frame root (use it as DATA.PATH_PREFIX)")
    parser.add_argument("--lists", help="existing folder for train.csv / val.csv (default: --annotations)")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    parser.add_argument("--jobs", type=int, default=usable_cpus())
    return parser


def _extract_one(job: tuple[str, str, str, float, int]) -> tuple[str, Optional[str], list[str]]:
    """(video id, error, frame paths relative to the frame root)."""
    video_path, frame_root, video_id, fps, quality = job
    try:
        return video_id, None, extract_video(video_path, frame_root, video_id, fps, quality)
    except (VideoDecodeError, av.FFmpegError, OSError) as e:
        return video_id, str(e), []


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not os.path.isdir(args.videos):
        parser.error(f"--videos: {args.videos} is not a folder (it should hold the {{id}}.webm files)")
    lists, splits = check_and_read_splits(parser, args.annotations, args.lists, version=2)

    def source(video_id: str) -> str:
        return os.path.join(args.videos, f"{video_id}.webm")

    for split, ids in splits.items():
        if not any(os.path.isfile(source(v)) or os.path.isdir(os.path.join(args.frames, v)) for v in ids):
            parser.exit(
                2,
                f"{parser.prog}: none of the {len(ids)} {split} videos is in --videos {args.videos} (as "
                f"{ids[0]}.webm) or extracted in --frames {args.frames}; check both folders. No list was written.\n",
            )

    def extract(split: str, ids: list[str]) -> dict[str, list[str]]:
        jobs = [(source(v), args.frames, v, args.fps, args.quality) for v in ids]
        frames = {}
        for video_id, error, paths in tqdm(parallel(_extract_one, jobs, args.jobs), total=len(jobs), desc=split):
            if error:
                tqdm.write(f"FAILED {video_id}: {error}")
            frames[video_id] = paths
        return frames

    return write_lists(lists, splits, extract, FIRST_FRAME, REMEDY)


if __name__ == "__main__":
    sys.exit(main())
