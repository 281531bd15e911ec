"""Every val and test video opened before training: the container and its video stream, as the
loader opens them, without decoding a frame. A missing, empty or unopenable file then stops a run
before its first epoch, with the whole list, instead of after the last one (TEST.SKIP_BROKEN_VIDEOS
leaves such files out, with a warning). A file that opens but is damaged further in is still found
only when its frames are read; tools/scan_dataset.py --full finds those too.

Frame folders (Something-Something's JPEGs) open without touching the disk: the frame lists named
their files, and a missing or unreadable JPEG is found when it is read."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from torch.utils.data import Dataset

from vov3d.utils.distributed import all_gather_objects, get_rank, get_world_size, is_main_process

from .clip_dataset import ClipDataset
from .decoder import VideoDecodeError
from .folder import VideoFolder

logger = logging.getLogger(__name__)

# Opening a file waits on the disk (or the network), not the CPU, and each thread opens its own
# containers: a few threads hide the latency of network storage.
_THREADS = 8


# What to do about unreadable files: the folder dataset lists its videos by the files themselves,
# the others by the lines of their annotation files.
ANNOTATED_ADVICE = "fix them, or remove their lines from the annotation files"
FOLDER_ADVICE = "fix them, or delete them from their class folders"


def fix_advice(dataset: Dataset) -> str:
    """FOLDER_ADVICE for the folder dataset, else ANNOTATED_ADVICE."""
    return FOLDER_ADVICE if isinstance(dataset, VideoFolder) else ANNOTATED_ADVICE


def _open_error(dataset: ClipDataset, index: int) -> Optional[str]:
    """Why video ``index`` cannot be opened ("path: reason"), or None."""
    try:
        with dataset.open_video(index):
            return None
    except VideoDecodeError as e:
        return str(e)
    except Exception as e:  # any other failure is this file's too, and every process must reach the gather
        return f"{dataset.paths[index]}: cannot be opened: {type(e).__name__}: {e}"


def unopenable_videos(datasets: Mapping[str, Dataset]) -> dict[str, list[str]]:
    """Per split, "path: reason" of each video of its dataset that cannot be opened, in the
    dataset's order. A collective call with the same answer on every process: each opens every
    world-size-th of the distinct files (val and test of Something-Something share theirs) and
    the failures are gathered from all, so all processes stop, or go on, together."""
    clip_datasets = {split: ds for split, ds in datasets.items() if isinstance(ds, ClipDataset)}
    first: dict[str, tuple[ClipDataset, int]] = {}  # each distinct path, with a dataset that reads it
    for dataset in clip_datasets.values():
        for index, path in enumerate(dataset.paths):
            first.setdefault(path, (dataset, index))
    mine = list(first.items())[get_rank() :: get_world_size()]
    with ThreadPoolExecutor(_THREADS) as pool:
        reasons = list(pool.map(lambda job: _open_error(*job[1]), mine))
    failed: dict[str, str] = {}
    for found in all_gather_objects({path: reason for (path, _), reason in zip(mine, reasons) if reason}):
        failed.update(found)
    return {split: [failed[p] for p in dict.fromkeys(ds.paths) if p in failed] for split, ds in clip_datasets.items()}


def check_readable(datasets: Mapping[str, Dataset], skip_broken: bool) -> None:
    """Open every video of ``datasets`` (``unopenable_videos``, a collective call). Raises
    VideoDecodeError listing each unreadable file and the reason, unless ``skip_broken``
    (TEST.SKIP_BROKEN_VIDEOS): then the main process warns with the same list."""
    broken = unopenable_videos(datasets)
    files = [line for lines in broken.values() for line in lines]
    if not files:
        return
    counts = ", ".join(f"{split} {len(bad)} of {datasets[split].num_videos}" for split, bad in broken.items() if bad)
    listing = "".join(f"\n  {line}" for line in files)
    videos = f"{len(files)} video{'' if len(files) == 1 else 's'}"
    advice = fix_advice(next(iter(datasets.values())))
    if skip_broken:
        if is_main_process():
            logger.warning(
                "%s cannot be opened (%s); TEST.SKIP_BROKEN_VIDEOS leaves them out of validation and testing:%s",
                videos,
                counts,
                listing,
            )
        return
    raise VideoDecodeError(
        f"{videos} cannot be opened ({counts}), found before training: validation and testing would "
        f"stop on them. Set TEST.SKIP_BROKEN_VIDEOS True to leave them out, or {advice}:{listing}"
    )
