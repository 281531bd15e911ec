"""Read a clip as the original Kinetics loader picks it: by a window of presentation timestamps.

The original decodes forward from ``first`` and keeps the frames whose pts lie in ``[first, last]``
and the first frame it decodes after ``last`` (its read-ahead buffer of size 0 still stores one
frame before stopping), sorts them by pts and takes list positions, clamped to the list (see
``sampling.kinetics_window``). Here the list is made from the demuxer's packets before decoding (a
frame's position depends only on the pts of the frames, which the packets carry), so the decoder
may drop unreferenced frames that are not picked and only the picked frames are converted to RGB.
The decoded frames are checked against that list.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import NamedTuple, Optional

import av
import numpy as np
import torch

from .video_errors import decode_error


class DroppedNeededFrame(Exception):
    """A frame the decoder was allowed to drop was needed (the index rule: a gap in the timestamps;
    a window: the decoder dropped another frame than the one the skip was set for)."""


class _PacketsMisled(Exception):
    """The packets' pts did not list the frames the decoder gave (see ``PtsWindowReader._window_pass``)."""


class PtsWindow(NamedTuple):
    """The original Kinetics loader's clip: the frames whose raw pts lie in ``[first, last]`` and
    the next frame after ``last`` (every frame from pts 0 on when ``first`` is None, see
    ``timestamps_from_zero``), sorted by pts, at list ``positions`` clamped to that list."""

    first: Optional[int]
    last: Optional[int]
    positions: np.ndarray


class PtsWindowReader:
    """``get_window`` for a video reader (PyAVVideo) that offers the decoding steps used here:
    ``_from_keyframe_before``, ``_decoded``, ``_seconds``, ``rgb``, ``decoded_timestamps`` and
    its ``_container``, ``_stream``, ``_origin``, ``_can_skip``, ``_at_start``, ``path``,
    ``num_frames`` and ``fps``."""

    def get_window(self, window: PtsWindow) -> torch.Tensor:
        """The frames of ``window`` as uint8 T x H x W x 3 RGB, as the original decoded them.

        The window's frames are listed from the packets' pts before decoding, so the decoder may
        drop the unreferenced frames that are not picked; where the decoded frames contradict that
        list (frames without pts, re-timed packed B-frames), the window is decoded to list them.
        """
        positions = np.asarray(window.positions, dtype=np.int64)
        if len(positions) == 0 or positions.min() < 0:
            raise ValueError(f"window positions must be a non-empty list of positions >= 0, got {positions.tolist()}")
        try:
            listed = self.timestamps_from_zero() if window.first is None else None
            try:
                try:
                    listed, arrays = self._read_window(window, positions, listed, skip=self._can_skip)
                except DroppedNeededFrame:
                    listed, arrays = self._read_window(window, positions, listed, skip=False)
            except _PacketsMisled:
                listed, arrays = self._read_window(window, positions, self._window_timestamps(window), skip=False)
        except av.FFmpegError as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise decode_error(self.path, f"decoding failed: {reason} (damaged or truncated)") from None
        picks = listed[np.minimum(positions, len(listed) - 1)]
        return torch.from_numpy(np.stack([arrays[ts] for ts in picks.tolist()]))

    def timestamps_from_zero(self) -> np.ndarray:
        """The sorted pts of every frame from pts 0 on: the list the original makes of a video without
        a duration, which it decodes whole from pts 0 (frames shown before are not kept)."""
        timestamps = self.decoded_timestamps()
        timestamps = timestamps[timestamps >= 0]
        if len(timestamps) == 0:
            raise decode_error(self.path, "every frame has a negative pts: the original loader keeps none of them")
        return timestamps

    def _read_window(
        self, window: PtsWindow, positions: np.ndarray, listed: Optional[np.ndarray], skip: bool
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """The window's frame list (``listed``, or when None the packets' pts in the window and the next) and
        the RGB frames picked from it, by pts."""
        start = window.first if listed is None else int(listed[min(positions.min(), len(listed) - 1)])

        def scan(from_start: bool) -> Optional[tuple[np.ndarray, dict[int, np.ndarray]]]:
            return self._window_pass(window, positions, listed, skip, start, from_start)

        return self._from_keyframe_before(self._seconds(start), scan)

    def _packets_from(self, pts: int, from_start: bool) -> Optional[Iterator[av.Packet]]:
        """The packets from here on; after a seek (not ``from_start``) from the first keyframe, or
        None when that keyframe is shown after ``pts`` (the seek landed too late)."""
        self._at_start = False
        packets = self._container.demux(self._stream)
        if from_start:
            return packets
        for packet in packets:  # VP8 / VP9 decoders refuse an inter frame first
            if packet.is_keyframe:
                return None if packet.pts is None or packet.pts > pts else itertools.chain([packet], packets)
        return None

    def _window_pass(
        self,
        window: PtsWindow,
        positions: np.ndarray,
        listed: Optional[np.ndarray],
        skip: bool,
        start: int,
        from_start: bool,
    ) -> Optional[tuple[np.ndarray, dict[int, np.ndarray]]]:
        """One decode from here (see ``_read_window``); None when the seek landed too late.

        Listed from packets (``_listed_from_packets``), a decoded frame after the listed frame past
        the window ends the pass. Raises _PacketsMisled when a decoded frame from the window's start
        on is not listed or, decoding every frame, a listed one before the last pick did not come;
        DroppedNeededFrame when a pick was dropped with ``skip``.
        """
        packets = self._packets_from(start, from_start)
        if packets is None:
            return None
        from_packets = listed is None
        if from_packets:
            listed, packets = _listed_from_packets(packets, window)
        past = int(listed[-1]) if from_packets and listed[-1] > window.last else None  # the frame after the window
        picks = set(listed[np.minimum(positions, len(listed) - 1)].tolist())
        listed_set = set(listed.tolist())
        arrays: dict[int, np.ndarray] = {}
        seen = set()
        try:
            for ts, frame in self._decoded(packets, (lambda pts: pts not in picks) if skip else None):
                if past is not None and ts > past:
                    break
                if from_packets and ts >= window.first and ts not in listed_set:
                    raise _PacketsMisled
                seen.add(ts)
                if ts in picks:
                    arrays[ts] = self.rgb(frame)
                    if len(arrays) == len(picks):
                        break
        finally:
            self._stream.codec_context.skip_frame = "DEFAULT"
        if len(arrays) < len(picks):
            if skip:
                raise DroppedNeededFrame
            if from_packets:
                raise _PacketsMisled
            raise decode_error(self.path, "frames seen in an earlier decode did not come again (damaged file)")
        if from_packets and not skip and not set(listed[listed <= max(picks)].tolist()) <= seen:
            raise _PacketsMisled
        return listed, arrays

    def _window_timestamps(self, window: PtsWindow) -> np.ndarray:
        """The sorted distinct pts of the frames the original keeps of ``window``, by decoding as it
        does: from ``first`` on, up to ``last`` and the first frame decoded after it."""

        def scan(from_start: bool) -> Optional[np.ndarray]:
            packets = self._packets_from(window.first, from_start)
            if packets is None:
                return None
            kept = []
            for ts, _ in self._decoded(packets):
                if ts < window.first:
                    continue
                kept.append(ts)
                if ts > window.last:
                    break
            return np.unique(np.asarray(kept, dtype=np.int64))

        listed = self._from_keyframe_before(self._seconds(window.first), scan)
        if len(listed) == 0:
            first, last = self._seconds(window.first), self._seconds(window.last)
            raise decode_error(
                self.path,
                f"no frame is shown from {first:.2f} s on (a clip's window: {first:.2f} s to {last:.2f} s, pts "
                f"{window.first} to {window.last}), but the header promises {self.num_frames} frames at "
                f"{self.fps:.2f} fps from pts {self._origin}: the file is truncated or damaged",
            )
        return listed


def _listed_from_packets(packets: Iterator[av.Packet], window: PtsWindow) -> tuple[np.ndarray, Iterator[av.Packet]]:
    """The pts the original keeps of ``window`` as the packets list them (those in it and the
    smallest after ``last``), and the packets again from the first. Packets come in decode order,
    B-frames after the later frames they refer to, so they are read ahead until one is decoded
    after that smallest pts (pts >= dts: no later packet is shown before it)."""
    ahead, past = [], None
    for packet in packets:
        ahead.append(packet)
        if packet.pts is not None and packet.pts > window.last and (past is None or packet.pts < past):
            past = packet.pts
        decode_ts = packet.dts if packet.dts is not None else packet.pts
        if past is not None and decode_ts is not None and decode_ts > past:
            break
    listed = [p.pts for p in ahead if p.pts is not None and window.first <= p.pts <= window.last]
    if not listed and past is None:  # a truncated file, or packets without pts: decode to know
        raise _PacketsMisled
    return np.unique(listed + ([] if past is None else [past])), itertools.chain(ahead, packets)
