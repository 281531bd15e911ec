"""Read a clip as the original Kinetics loader picks it: by a window of presentation timestamps.

The original decodes forward from ``first`` and keeps the frames whose pts lie in ``[first, last]``
and the first frame it decodes after ``last`` (its read-ahead buffer of size 0 still stores one
frame before stopping), sorts them by pts and takes list positions, clamped to the list (see
``sampling.kinetics_window``). Here the list is made from the demuxer's packets before decoding (a
frame's position depends only on the pts of the frames, which the packets carry), so the decoder
may drop unreferenced frames that are not picked and only the picked frames are converted to RGB.
The decoded frames are checked against that list. Several windows of one video (AUG.NUM_SAMPLE's
clips) are read in one decode over their span, each window's list made from it as if alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
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
        return self.get_windows([window])[0]

    def get_windows(self, windows: Sequence[PtsWindow]) -> list[torch.Tensor]:
        """The frames of each of ``windows`` (all with a ``first`` or all without), each exactly as
        ``get_window`` gives it, from one decode from the earliest window's start to the latest's
        end: every frame of that span is decoded once (unless a check makes the reader decode
        again, as for one window), and each window's positions are taken from its own list."""
        if not windows or len({window.first is None for window in windows}) > 1:
            raise ValueError("give one or more windows, all with a first pts or all without one")
        positions = [np.asarray(window.positions, dtype=np.int64) for window in windows]
        for p in positions:
            if len(p) == 0 or p.min() < 0:
                raise ValueError(f"window positions must be a non-empty list of positions >= 0, got {p.tolist()}")
        try:
            lists = [self.timestamps_from_zero()] * len(windows) if windows[0].first is None else None
            try:
                try:
                    lists, arrays = self._read_windows(windows, positions, lists, skip=self._can_skip)
                except DroppedNeededFrame:
                    lists, arrays = self._read_windows(windows, positions, lists, skip=False)
            except _PacketsMisled:
                lists, arrays = self._read_windows(windows, positions, self._window_timestamps(windows), skip=False)
        except av.FFmpegError as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise decode_error(self.path, f"decoding failed: {reason} (damaged or truncated)") from None
        picked = [_picks(listed, p).tolist() for listed, p in zip(lists, positions)]
        return [torch.from_numpy(np.stack([arrays[ts] for ts in pts])) for pts in picked]

    def timestamps_from_zero(self) -> np.ndarray:
        """The sorted pts of every frame from pts 0 on: the list the original makes of a video without
        a duration, which it decodes whole from pts 0 (frames shown before are not kept)."""
        timestamps = self.decoded_timestamps()
        timestamps = timestamps[timestamps >= 0]
        if len(timestamps) == 0:
            raise decode_error(self.path, "every frame has a negative pts: the original loader keeps none of them")
        return timestamps

    def _read_windows(
        self, windows: Sequence[PtsWindow], positions: list[np.ndarray], lists: Optional[list[np.ndarray]], skip: bool
    ) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
        """Each window's frame list (``lists``, or when None from the packets' pts) and the RGB frames
        picked from them, by pts."""
        if lists is None:
            start = min(window.first for window in windows)
        else:
            start = min(int(_picks(listed, p).min()) for listed, p in zip(lists, positions))

        def scan(from_start: bool) -> Optional[tuple[list[np.ndarray], dict[int, np.ndarray]]]:
            return self._window_pass(windows, positions, lists, skip, start, from_start)

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
        windows: Sequence[PtsWindow],
        positions: list[np.ndarray],
        lists: Optional[list[np.ndarray]],
        skip: bool,
        start: int,
        from_start: bool,
    ) -> Optional[tuple[list[np.ndarray], dict[int, np.ndarray]]]:
        """One decode from here (see ``_read_windows``); None when the seek landed too late.

        Listed from packets (``_shown_in_packets``), a decoded frame after the frame past the latest
        window ends the pass. Raises _PacketsMisled when a decoded frame from the earliest window's
        start on is not in the packets or, decoding every frame, a listed one before the last pick
        did not come; DroppedNeededFrame when a pick was dropped with ``skip``.
        """
        packets = self._packets_from(start, from_start)
        if packets is None:
            return None
        from_packets, past, shown = lists is None, None, set()
        if from_packets:
            shown_pts, packets = _shown_in_packets(packets, windows)
            lists = [_window_list(shown_pts, window) for window in windows]
            latest = max(range(len(windows)), key=lambda i: windows[i].last)
            past = int(lists[latest][-1]) if lists[latest][-1] > windows[latest].last else None  # after the windows
            shown = set(shown_pts.tolist())
        first = min(window.first for window in windows) if from_packets else None
        picks = set(np.concatenate([_picks(listed, p) for listed, p in zip(lists, positions)]).tolist())
        arrays: dict[int, np.ndarray] = {}
        seen = set()
        try:
            for ts, frame in self._decoded(packets, (lambda pts: pts not in picks) if skip else None):
                if past is not None and ts > past:
                    break
                if from_packets and ts >= first and ts not in shown:
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
        listed = np.concatenate(lists)
        if from_packets and not skip and not set(listed[listed <= max(picks)].tolist()) <= seen:
            raise _PacketsMisled
        return lists, arrays

    def _window_timestamps(self, windows: Sequence[PtsWindow]) -> list[np.ndarray]:
        """For each window, the sorted distinct pts of the frames the original keeps of it, by
        decoding as it does: from ``first`` on, up to ``last`` and the first frame decoded after it
        (one decode from the earliest ``first`` to the latest ``last``)."""
        first, last = min(window.first for window in windows), max(window.last for window in windows)

        def scan(from_start: bool) -> Optional[list[int]]:
            packets = self._packets_from(first, from_start)
            if packets is None:
                return None
            order = []  # the decoder's order, from the earliest first on
            for ts, _ in self._decoded(packets):
                if ts >= first:
                    order.append(ts)
                if ts > last:
                    break
            return order

        order = self._from_keyframe_before(self._seconds(first), scan)
        return [self._kept(order, window) for window in windows]

    def _kept(self, order: list[int], window: PtsWindow) -> np.ndarray:
        """What the original keeps of ``window`` from frames decoded in ``order``."""
        kept = []
        for ts in order:
            if ts < window.first:
                continue
            kept.append(ts)
            if ts > window.last:
                break
        if not kept:
            first, last = self._seconds(window.first), self._seconds(window.last)
            raise decode_error(
                self.path,
                f"no frame is shown from {first:.2f} s on (a clip's window: {first:.2f} s to {last:.2f} s, pts "
                f"{window.first} to {window.last}), but the header promises {self.num_frames} frames at "
                f"{self.fps:.2f} fps from pts {self._origin}: the file is truncated or damaged",
            )
        return np.unique(np.asarray(kept, dtype=np.int64))


def _picks(listed: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The pts at list ``positions``, clamped to the list."""
    return listed[np.minimum(positions, len(listed) - 1)]


def _window_list(shown: np.ndarray, window: PtsWindow) -> np.ndarray:
    """The original's list of ``window`` from the sorted pts ``shown`` by the packets: those in it
    and the smallest after ``last``."""
    inside = shown[(shown >= window.first) & (shown <= window.last)]
    listed = np.concatenate([inside, shown[shown > window.last][:1]])
    if len(listed) == 0:  # a truncated file, or packets without pts: decode to know
        raise _PacketsMisled
    return listed


def _shown_in_packets(
    packets: Iterator[av.Packet], windows: Sequence[PtsWindow]
) -> tuple[np.ndarray, Iterator[av.Packet]]:
    """The sorted pts of the packets from the earliest window's ``first`` up to the smallest after the
    latest ``last`` (from which ``_window_list`` makes each window's list), and the packets again
    from the first. Packets come in decode order, B-frames after the later frames they refer to, so
    they are read ahead until one is decoded after that smallest pts (pts >= dts: no later packet
    is shown before it)."""
    first, last = min(window.first for window in windows), max(window.last for window in windows)
    ahead, past = [], None
    for packet in packets:
        ahead.append(packet)
        if packet.pts is not None and packet.pts > last and (past is None or packet.pts < past):
            past = packet.pts
        decode_ts = packet.dts if packet.dts is not None else packet.pts
        if past is not None and decode_ts is not None and decode_ts > past:
            break
    shown = np.unique([p.pts for p in ahead if p.pts is not None and p.pts >= first]).astype(np.int64)
    return shown, itertools.chain(ahead, packets)
