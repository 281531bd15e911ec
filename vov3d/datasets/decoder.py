"""Read the frames a clip needs from a video file with PyAV.

A clip asks either for frame indices (``get_frames``: index ``i`` means "the frame on screen at time
``i / fps``" from the start of the stream, so variable-frame-rate videos are sampled in time rather
than by counting frames), or, as the original Kinetics loader, for a pts window and positions in
the list of the frames shown in it and the next one (``get_window``). The reader seeks to the
keyframe before the first needed frame, decodes up to the last one, and converts only the frames
that are used to RGB. Frames that are neither needed nor referenced by other frames (most
B-frames) are not decoded at all: decoding is most of the cost.

A seek may land on an inter frame (WebM cues that point at inter frames): packets up to the next
keyframe are dropped, since VP8 / VP9 decoders refuse an inter frame first, and when that keyframe
is past the clip the reader seeks earlier. A decode that fails after a seek is retried from the
start before the file is called broken.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Callable, Optional, TypeVar

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from .pts_window import DroppedNeededFrame, PtsWindow, PtsWindowReader
from .timestamps import decoded_timestamps, iter_frames
from .video_errors import VideoDecodeError, decode_error, worker_message

__all__ = [
    "VIDEO_BACKENDS",
    "PtsWindow",
    "PyAVVideo",
    "VideoDecodeError",
    "decode_error",
    "open_video_file",
    "worker_message",
]

# Seek a few frames before the first needed one: containers index keyframes by decode time,
# which may precede the presentation time by the B-frame delay.
_SEEK_MARGIN_FRAMES = 4
# A video may end this many frames before its header says (rounded durations) without error.
_END_TOLERANCE_FRAMES = 2
# Frames shown this close before a needed time are always decoded (see ``_skippable``): less than
# a frame, so a constant-rate video decodes just the picked frame, with a quarter frame of slack
# for timestamp jitter. A variable-rate pick further back is caught by ``_check_picks``.
_KEEP_BEFORE_FRAMES = 0.75
# Codecs whose FFmpeg decoders apply ``skip_frame`` to the very packet sent after it is set; others
# (dav1d, frame-threaded or packed-B-frame decoders) may apply it to a later frame.
_SKIP_CODECS = frozenset({"h264", "hevc"})
_T = TypeVar("_T")


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise decode_error(path, "file not found")
    if os.path.isdir(path):
        raise decode_error(path, "is a folder, not a video file")
    if os.path.getsize(path) == 0:
        raise decode_error(path, "file is empty (0 bytes)")


class PyAVVideo(PtsWindowReader):
    """An open video file: its first video stream, frame rate, frame count, and ``get_frames``.

    Use as a context manager (or call ``close``) so the file is released promptly in workers.
    """

    def __init__(self, path: str, multi_thread: bool = False) -> None:
        self.path = path
        _check_file(path)
        try:
            self._container = av.open(path, metadata_errors="ignore")
        except (av.FFmpegError, OSError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise decode_error(path, f"cannot be opened as a video: {reason} (not a video, or truncated)") from None
        try:
            streams = self._container.streams.video
            if not self._container.streams:
                raise decode_error(path, "contains no streams (truncated, or not a video)")
            if not streams:
                raise decode_error(path, "has no video stream")
            self._stream, self._multi_thread = streams[0], multi_thread
            self._set_threads()
            self._time_base = float(self._stream.time_base)
            self._origin = self._stream.start_time or 0
            self._at_start = True
            self._can_skip = self._stream.codec_context.name in _SKIP_CODECS and self._stream.thread_count == 1
            self.decoded_frames = 0  # frames the decoder produced so far: tests check seeking
            self.decoded_packets = 0  # packets sent to the decoder so far: the benchmark's packets per clip
            # One reformatter keeps its swscale context (frame.to_ndarray makes a new one per frame,
            # which costs more than the conversion). Single-threaded: swscale's own thread pool
            # would hang a loader worker forked while a reader is alive.
            self.reformatter = VideoReformatter()
            self.fps = self._frame_rate()
            self.num_frames = self._frame_count()
            self.pts_per_frame = self._pts_per_frame()
            # Where the original has a frame count its windows count pts from 0; where it has none (it
            # divides by zero) ours count from the stream's first pts, as an MPEG-TS starts late.
            self.window_origin = 0 if self._stream.frames else self._origin
        except Exception:
            self.close()
            raise

    def _set_threads(self) -> None:
        if self._multi_thread:  # frame and slice threads, as many as FFmpeg sees fit
            self._stream.thread_type, self._stream.thread_count = "AUTO", 0
        else:  # loader workers already decode videos in parallel
            self._stream.thread_count = 1

    def _rewind(self) -> None:
        """Back to the first packet, with a fresh demuxer: a seek to the start time lands on the
        packet of that decode time in some containers (MPEG-TS), after frames that are shown first."""
        self._container.close()
        self._container = av.open(self.path, metadata_errors="ignore")
        self._stream = self._container.streams.video[0]
        self._set_threads()

    def _frame_rate(self) -> float:
        stream = self._stream
        for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
            if rate and rate > 0:
                return float(rate)
        raise decode_error(self.path, "the container gives no frame rate")

    def _frame_count(self) -> int:
        """The header's frame count, else duration x fps (Matroska/WebM store no frame count),
        else (a raw stream) the frames of a whole decode, as the original VoV3D code counts them."""
        stream = self._stream
        if stream.frames > 0:
            return int(stream.frames)
        if stream.duration:
            seconds = stream.duration * self._time_base
        elif self._container.duration:
            seconds = self._container.duration / av.time_base
        else:
            return self._decoded_count()  # once per file and process: every clip of it asks
        count = int(round(seconds * self.fps))
        if count < 1:
            raise decode_error(self.path, f"has no frames (duration {seconds:.3f} s)")
        return count

    def _pts_per_frame(self) -> Optional[float]:
        """The original's ``timebase = duration / frames`` (raw stream units), None without a duration.
        WebM headers hold no frame count, where the original divides by zero: ours (duration x fps)."""
        duration = self._stream.duration
        if not duration:
            return None
        return duration / (self._stream.frames or self.num_frames)

    def decoded_timestamps(self) -> np.ndarray:
        """The sorted distinct pts of every frame, from a whole decode (once per file and process).
        Raises VideoDecodeError when the video ends well before its header says (a truncated file)."""
        timestamps = self._whole_decode()
        self.check_ends_at(self._seconds(int(timestamps[-1])), len(timestamps))
        return timestamps

    def check_ends_at(self, last: float, frames: int) -> None:
        """Raise VideoDecodeError when a decode whose last of ``frames`` frames is shown at ``last``
        seconds ended well before the header says (a truncated file)."""
        # Without the stream's own count or duration, the count comes from the container's duration,
        # which includes a longer audio track: only a video-only file can be judged by it.
        own_count = self._stream.frames > 0 or bool(self._stream.duration) or len(self._container.streams) == 1
        if own_count and (self.num_frames - 1 - _END_TOLERANCE_FRAMES) / self.fps > last:
            raise decode_error(
                self.path,
                f"the video ends at {last:.2f} s (frame {frames - 1}) but the header promises "
                f"{self.num_frames} frames at {self.fps:.2f} fps: the file is truncated or damaged",
            )

    def _whole_decode(self) -> np.ndarray:
        stat = os.stat(self.path)
        return decoded_timestamps(self.path, stat.st_size, stat.st_mtime_ns)

    def _decoded_count(self) -> int:
        return len(self._whole_decode())

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the decoded frames."""
        return self._stream.height, self._stream.width

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> PyAVVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """The frames at ``indices`` (any order, repeats allowed) as uint8 T x H x W x 3 RGB."""
        indices = np.asarray(indices, dtype=np.int64)
        wanted = np.unique(indices)
        if len(wanted) == 0 or wanted[0] < 0:
            raise ValueError(f"frame indices must be a non-empty list of indices >= 0, got {indices.tolist()}")
        try:
            try:
                arrays = self._decode(wanted / self.fps, skip=self._can_skip)
            except DroppedNeededFrame:
                arrays = self._decode(wanted / self.fps, skip=False)
        except av.FFmpegError as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise decode_error(self.path, f"decoding failed: {reason} (damaged or truncated)") from None
        by_index = dict(zip(wanted.tolist(), arrays))
        return torch.from_numpy(np.stack([by_index[i] for i in indices.tolist()]))

    def _decode(self, times: np.ndarray, skip: bool) -> list[np.ndarray]:
        return self._from_keyframe_before(times[0], lambda from_start: self._scan(times, from_start, skip))

    def _from_keyframe_before(self, seconds: float, scan: Callable[[bool], Optional[_T]]) -> _T:
        """``scan(from_start=False)`` after a seek to the keyframe a few frames before ``seconds``
        (from the stream's start), seeking further back while it returns None (the keyframe it
        found is past ``seconds``); ``scan(from_start=True)`` from the start when no seek serves."""
        back = _SEEK_MARGIN_FRAMES / self.fps
        while seconds - back > 0:
            try:
                self._seek(seconds - back)
                result = scan(False)
            except av.FFmpegError:  # a refused seek, or keyframe flags that are wrong: only the start is safe
                break
            if result is not None:
                return result
            back *= 2
        if not self._at_start:  # a second read, or the seek landed after the first needed frame
            self._rewind()
        result = scan(True)
        assert result is not None
        return result

    def _seek(self, seconds: float) -> None:
        self._at_start = False  # even a refused seek may leave the demuxer elsewhere
        offset = self._origin + int(seconds / self._time_base)
        self._container.seek(offset, stream=self._stream, backward=True, any_frame=False)

    def _seconds(self, pts: int) -> float:
        return (pts - self._origin) * self._time_base

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """H x W x 3 uint8 RGB, honouring the frame's colour range, matrix and bit depth."""
        return self.reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()

    def frames(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Every frame from the start with its time in seconds (for the preparation tools)."""
        if not self._at_start:
            self._rewind()
        try:
            yield from self._timed()
        except av.FFmpegError as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise decode_error(self.path, f"decoding failed: {reason} (damaged or truncated)") from None

    def _timed(
        self, skippable: Optional[Callable[[int], bool]] = None, from_keyframe: bool = False
    ) -> Iterator[tuple[float, av.VideoFrame]]:
        packets = self._container.demux(self._stream)
        for ts, frame in self._decoded(packets, skippable, from_keyframe):
            yield self._seconds(ts), frame

    def _decoded(
        self,
        packets: Iterable[av.Packet],
        skippable: Optional[Callable[[int], bool]] = None,
        from_keyframe: bool = False,
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """``iter_frames`` of ``packets`` (raw timestamps), counted in ``decoded_frames`` and ``decoded_packets``."""
        self._at_start = False
        for ts, frame in iter_frames(packets, self._stream, skippable, from_keyframe, self._count_packet):
            self.decoded_frames += 1
            yield ts, frame

    def _count_packet(self) -> None:
        self.decoded_packets += 1

    def _skippable(self, times: np.ndarray, dropped: list[float]) -> Callable[[int], bool]:
        """Whether the packet with a pts may be dropped: its frame is shown outside every window
        (time - _KEEP_BEFORE_FRAMES frames, time + half a frame] of the needed ``times``, where the
        picked frame of a constant-rate video lies. Records the times of such packets in ``dropped``."""
        keep_from, keep_to = times - _KEEP_BEFORE_FRAMES / self.fps, times + 0.5 / self.fps

        def skippable(pts: int) -> bool:
            t = (pts - self._origin) * self._time_base
            i = int(np.searchsorted(keep_to, t))  # the first window that does not end before t
            if i < len(times) and t > keep_from[i]:
                return False
            dropped.append(t)
            return True

        return skippable

    def _scan(self, times: np.ndarray, from_start: bool, skip: bool) -> Optional[list[np.ndarray]]:
        """Decode forward and pick, for each time, the last frame shown at or before it.

        Returns None when, after a seek, the first decoded frame is already past ``times[0]`` or
        no keyframe follows. From the start, a time before the first frame gets the first frame.
        With ``skip``, the decoder may drop unreferenced frames away from the needed times; should
        one of them have been the pick (timestamps with gaps), raises DroppedNeededFrame so the
        caller decodes them all.
        """
        half = 0.5 / self.fps
        dropped: list[float] = []
        out: list[np.ndarray] = []
        picked: list[float] = []
        prev_t, prev, prev_rgb = -1.0, None, None
        try:
            for t, frame in self._timed(self._skippable(times, dropped) if skip else None, not from_start):
                if prev is None:
                    if t > times[0] + half and not from_start:
                        return None
                    prev_t, prev = t, frame  # from the start, the first frame stands for earlier times
                while len(out) < len(times) and t > times[len(out)] + half:
                    prev_rgb = self.rgb(prev) if prev_rgb is None else prev_rgb
                    out.append(prev_rgb)
                    picked.append(prev_t)
                if len(out) == len(times):
                    _check_picks(times[: len(picked)], picked, dropped, half)
                    return out
                if frame is not prev:
                    prev_t, prev, prev_rgb = t, frame, None
        finally:
            self._stream.codec_context.skip_frame = "DEFAULT"
        _check_picks(times[: len(picked)], picked, dropped, half)
        if prev is None and not from_start:
            return None
        if prev is None:
            raise decode_error(self.path, "no frame could be decoded")
        end = prev_t + _END_TOLERANCE_FRAMES / self.fps
        if times[-1] > end:
            raise decode_error(
                self.path,
                f"the video ends at {prev_t:.2f} s (frame {round(prev_t * self.fps)}) but frame "
                f"{round(times[-1] * self.fps)} is needed; the header promises {self.num_frames} frames "
                f"at {self.fps:.2f} fps: the file is truncated or damaged",
            )
        prev_rgb = self.rgb(prev) if prev_rgb is None else prev_rgb
        return out + [prev_rgb] * (len(times) - len(out))


def _check_picks(times: np.ndarray, picked: Sequence[float], dropped: Sequence[float], half: float) -> None:
    """Raise DroppedNeededFrame when a dropped frame was shown after the frame picked for a time
    and still at or before it: decoded, it would have been the pick."""
    if not dropped:
        return
    shown = np.sort(np.asarray(dropped))
    up_to_time = np.searchsorted(shown, np.asarray(times) + half, side="right")
    up_to_pick = np.searchsorted(shown, np.asarray(picked), side="right")
    if np.any(up_to_time > up_to_pick):
        raise DroppedNeededFrame


VIDEO_BACKENDS = {"pyav": PyAVVideo}
"""Video readers that DATA.DECODING_BACKEND may name; another (torchcodec, decord) plugs in here
with the same interface: ``num_frames``, ``fps``, ``get_frames`` and use as a context manager."""


def open_video_file(path: str, backend: str = "pyav", multi_thread: bool = False) -> PyAVVideo:
    """Open ``path`` with the reader named ``backend``; raises VideoDecodeError."""
    return VIDEO_BACKENDS[backend](path, multi_thread)
