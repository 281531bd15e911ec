"""Decoded frames with their timestamps: display order, packed B-frames re-timed, and the
timestamps of a whole decode cached per file."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Callable, Optional

import av
import numpy as np

from .video_errors import decode_error


@functools.lru_cache(maxsize=1024)
def decoded_timestamps(path: str, size: int, mtime_ns: int) -> np.ndarray:
    """The sorted distinct pts of a whole decode of ``path`` (as it is at ``size`` and ``mtime_ns``)."""
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        try:
            timestamps = np.unique([ts for ts, _ in iter_frames(container.demux(stream), stream)])
        except av.FFmpegError as e:
            raise decode_error(path, f"decoding failed while counting its frames: {e}") from None
    if len(timestamps) < 1:
        raise decode_error(path, "has no decodable frames (and no frame count or duration in its header)")
    return timestamps


def iter_frames(
    packets: Iterable[av.Packet],
    stream: av.video.stream.VideoStream,
    skippable: Optional[Callable[[int], bool]] = None,
    from_keyframe: bool = False,
    on_packet: Optional[Callable[[], None]] = None,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded frames of ``packets`` (of ``stream``; ``container.demux(stream)`` for all) in display
    order with a timestamp in ``stream.time_base`` units.

    ``skippable(pts)`` says which packets the decoder may drop when no other frame refers to them
    (FFmpeg's ``skip_frame`` NONREF, set per packet); packets without a trusted pts are decoded.
    With ``from_keyframe`` (after a seek) packets before the first keyframe are dropped: VP8 and
    VP9 decoders refuse an inter frame as the first packet. ``on_packet()`` is called for each
    packet sent to the decoder (what decoding costs: the benchmark's packets per clip).

    The timestamp is the pts, unless pts go backwards while dts do not (packed B-frames in AVI,
    as in FFmpeg's best-effort timestamp); then dts from there on. Frames are yielded one late so
    that the frame whose pts revealed the fault is re-timed too.
    """
    pending: Optional[tuple[int, av.VideoFrame]] = None
    use_dts = False
    last_pts: Optional[int] = None
    last_dts: Optional[int] = None
    context = stream.codec_context
    for packet in packets:
        if from_keyframe:
            if not packet.is_keyframe:
                continue
            from_keyframe = False
        if skippable is not None:
            trusted = packet.pts is not None and not use_dts
            context.skip_frame = "NONREF" if trusted and skippable(packet.pts) else "DEFAULT"
        if on_packet is not None:
            on_packet()
        for frame in packet.decode():
            pts, dts = frame.pts, frame.dts
            if (
                not use_dts
                and None not in (pts, last_pts, dts)
                and pts <= last_pts
                and (last_dts is None or dts > last_dts)
            ):
                use_dts = True
                if pending is not None and pending[1].dts is not None:
                    pending = (pending[1].dts, pending[1])
            ts = dts if (use_dts or pts is None) else pts
            if ts is None:  # no timestamp at all: one tick after the previous frame
                ts = pending[0] + 1 if pending is not None else 0
            last_pts = pts if pts is not None else last_pts
            last_dts = dts if dts is not None else last_dts
            if pending is not None:
                yield pending
            pending = (ts, frame)
    if pending is not None:
        yield pending
