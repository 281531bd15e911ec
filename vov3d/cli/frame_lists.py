"""Something-Something frame lists for extract_frames (SSv2) and make_ssv1_lists: the split
files read as the datasets read them, and a list written even when some videos have no frames."""

from __future__ import annotations

import argparse
import os
from typing import Callable, Optional

from vov3d.datasets.annotations import (
    AnnotationError,
    read_ssv1_labels,
    read_ssv1_split,
    read_ssv2_labels,
    read_ssv2_split,
    write_frame_list,
)

# split file -> frame list, in PATH_TO_DATA_DIR (ssv.py reads val.csv for val and test)
SPLITS = {"train": "train.csv", "validation": "val.csv"}


def read_split_ids(annotations: str, version: int) -> dict[str, list[str]]:
    """The video ids of each split of Something-Something ``version`` (1 or 2), in file order;
    the labels are checked as the dataset checks them. Missing files are named together."""
    suffix, read_labels, read_split = {
        1: ("csv", read_ssv1_labels, read_ssv1_split),
        2: ("json", read_ssv2_labels, read_ssv2_split),
    }[version]
    files = {
        part: os.path.join(annotations, f"something-something-v{version}-{part}.{suffix}")
        for part in ("labels", *SPLITS)
    }
    missing = [os.path.basename(path) for path in files.values() if not os.path.isfile(path)]
    if missing:
        raise AnnotationError(
            f"--annotations {annotations}: {', '.join(missing)} not found; it must be the folder of the "
            f"Something-Something V{version} annotation files (DATA.md)"
        )
    label_ids = read_labels(files["labels"])
    return {split: read_split(files[split], label_ids)[0] for split in SPLITS}


def check_and_read_splits(
    parser: argparse.ArgumentParser, annotations: str, lists: Optional[str], version: int
) -> tuple[str, dict[str, list[str]]]:
    """(folder of the frame lists, {split: video ids}), checked before any work: exits with status 2
    and one line when ``--lists`` is not a folder or an annotation file is missing or malformed."""
    lists = lists or annotations
    if not os.path.isdir(lists):
        parser.error(f"--lists: {lists} is not a folder; create it or leave --lists out")
    try:
        return lists, read_split_ids(annotations, version)
    except AnnotationError as e:
        parser.exit(2, f"{parser.prog}: {e}\n")


def write_lists(
    lists: str,
    splits: dict[str, list[str]],
    find_frames: Callable[[str, list[str]], dict[str, list[str]]],
    first_frame: str,
    remedy: str,
) -> int:
    """Write the frame list of each split, its videos in split-file order, with the frames that
    ``find_frames(split, ids)`` gives; the exit status: 1 when a video has none, else 0.

    A video without frames stays in the list as one row naming ``first_frame`` (``{id}`` replaced),
    a file that does not exist: the list keeps every video of the split file, so training starts and
    the loader treats that video as broken (DATA.md, Broken videos) instead of refusing the list.
    When no video of a split has frames the folders are wrong, not the videos: nothing is written,
    so a good list is never replaced by an empty one."""
    status = 0
    for split, ids in splits.items():
        path = os.path.join(lists, SPLITS[split])
        frames = find_frames(split, ids)
        failed = [video for video in ids if not frames.get(video)]
        status = 1 if failed else status
        if len(failed) == len(ids):
            print(f"{split}: none of the {len(ids)} videos has frames; {path} is left as it was")
            continue
        write_frame_list(path, {video: frames.get(video) or [first_frame.format(id=video)] for video in ids})
        print(f"{split}: frames of {len(ids) - len(failed)} of {len(ids)} videos, list {path}")
        if failed:
            print(
                f"{split}: {len(failed)} videos have no frames (listed above, e.g. {', '.join(failed[:3])}). "
                f"{path} keeps them with one missing frame each: training replaces them as broken videos, "
                "validation and testing stop on them unless TEST.SKIP_BROKEN_VIDEOS True "
                f"(DATA.md, Broken videos). {remedy}"
            )
    return status
