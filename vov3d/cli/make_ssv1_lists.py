"""``make_ssv1_lists``: the frame lists ``train.csv`` / ``val.csv`` of Something-Something V1,
from its JPEG folders and official CSV files (SSv1 ships as frames, so nothing is extracted)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from tqdm import tqdm

from vov3d.cli.frame_lists import check_and_read_splits, write_lists
from vov3d.datasets.ssv import jpeg_names

FIRST_FRAME = "{id}/00001.jpg"  # named in the list row of a video without frames
REMEDY = "Unpack those folders from the SSv1 archive into --frames and run this command again."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_ssv1_lists.py", description="Write the Something-Something V1 frame lists train.csv / val.csv."
    )
    parser.add_argument(
        "--frames", required=True, help="the 20bn-something-something-v1 folder of {id}/*.jpg (DATA.PATH_PREFIX)"
    )
    parser.add_argument(
        "--annotations", required=True, help="folder of something-something-v1-*.csv (DATA.PATH_TO_DATA_DIR)"
    )
    parser.add_argument("--lists", help="existing folder for train.csv / val.csv (default: --annotations)")
    return parser


def video_frames(frame_root: str, video_id: str) -> list[str]:
    """The JPEG files of one video in name order, relative to ``frame_root``; [] without a folder."""
    folder = os.path.join(frame_root, video_id)
    if not os.path.isdir(folder):
        return []
    return [f"{video_id}/{name}" for name in jpeg_names(folder)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not os.path.isdir(args.frames):
        parser.error(f"--frames: {args.frames} is not a folder (it should hold one folder of JPEGs per video)")
    lists, splits = check_and_read_splits(parser, args.annotations, args.lists, version=1)

    def find(split: str, ids: list[str]) -> dict[str, list[str]]:
        frames = {}
        for video_id in tqdm(ids, desc=split):
            frames[video_id] = video_frames(args.frames, video_id)
            if not frames[video_id]:
                tqdm.write(f"FAILED {video_id}: no JPEG files in {os.path.join(args.frames, video_id)}")
        return frames

    return write_lists(lists, splits, find, FIRST_FRAME, REMEDY)


if __name__ == "__main__":
    sys.exit(main())
