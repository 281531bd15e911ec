"""What a clip costs besides wall time, for ``benchmark data`` and ``benchmark keyframes``: the
packets sent to the decoder, the frames it decoded and the bytes of the frames a loader worker
sends, counted through the dataset in an untimed pass; and the CPU time of loader workers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

import torch
from torch.utils.data import DataLoader


def clips_in_item(frames: torch.Tensor) -> int:
    """Clips in an item's frames: N of N x T x H x W x 3 (AUG.NUM_SAMPLE N), else one."""
    return frames.shape[0] if frames.ndim == 5 else 1


@contextlib.contextmanager
def opened_sources(dataset: Any) -> Iterator[list[Any]]:
    """The sources (video readers, frame folders) that ``dataset`` opens inside the block, listed as
    it opens them: its ``open_video`` is wrapped on the instance for the block."""
    opened: list[Any] = []
    method = dataset.open_video

    def record(video_index: int) -> Any:
        source = method(video_index)
        opened.append(source)
        return source

    dataset.open_video = record
    try:
        yield opened
    finally:
        del dataset.open_video  # the class's method again


def clip_counts(dataset: Any, items: Sequence[int], seed: int) -> tuple[int, dict[str, Optional[float]]]:
    """The clips of ``dataset[i]`` for ``items`` after ``dataset.reseed(seed)`` (the clips a timed
    pass that reseeds the same way reads), and per clip: ``packets_per_clip`` and ``frames_per_clip``
    (PyAVVideo's ``decoded_packets`` and ``decoded_frames``; None where a source has no such
    counter, as JPEG folders) and ``bytes_per_clip`` (of the items' frames tensors). Call it on a
    dataset that holds no source open from earlier reads: those would not be counted."""
    dataset.reseed(seed)
    clips = nbytes = 0
    with opened_sources(dataset) as opened:
        for i in items:
            frames = dataset[i][0]
            clips += clips_in_item(frames)
            nbytes += frames.nbytes
    sources = list({id(source): source for source in opened}.values())  # a source reused is counted once

    def per_clip(counter: str) -> Optional[float]:
        if not sources or not all(hasattr(source, counter) for source in sources):
            return None
        return sum(getattr(source, counter) for source in sources) / clips

    counts = {"packets_per_clip": per_clip("decoded_packets"), "frames_per_clip": per_clip("decoded_frames")}
    return clips, {**counts, "bytes_per_clip": nbytes / clips}


def loader_cpu_clock(loader: DataLoader) -> Optional[Callable[[], float]]:
    """A clock of the user + system CPU seconds (all threads, from /proc/<pid>/stat) that the
    processes loading ``loader``'s batches used so far: its workers (started: after a first batch
    of a loader with persistent workers), or this process without workers. None without /proc."""
    if not os.path.exists("/proc/self/stat"):
        return None
    # DataLoader keeps the iterator of persistent workers; their processes are not public otherwise.
    pids = [worker.pid for worker in loader._iterator._workers] if loader.num_workers else [os.getpid()]
    return lambda: sum(_cpu_seconds(pid) for pid in pids)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: proc(5) fields 14, 15
