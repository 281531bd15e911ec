"""The frames the demo labels: a video file read from the start (PyAV), or a camera read live."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, Optional

import numpy as np

from vov3d.datasets.decoder import PyAVVideo, open_video_file

from .demo import DemoError


class FrameSource:
    """``name``, ``fps``, ``size`` (height, width), ``num_frames`` (None for a camera) and
    ``frames(limit)``; a context manager that closes the file or the camera. A live camera stops
    at Ctrl-C after the frame being read: the frames so far are labelled and written."""

    def __init__(self, name: str, fps: float, size: tuple[int, int], num_frames: Optional[int], reader: Any) -> None:
        self.name, self.fps, self.size, self.num_frames = name, fps, size, num_frames
        self._reader, self._stop = reader, False

    @property
    def live(self) -> bool:
        return self.num_frames is None

    @classmethod
    def video(cls, path: str) -> FrameSource:
        if not path:
            raise DemoError("give a video (or DEMO.INPUT_VIDEO), or --webcam N")
        if not os.path.exists(path):
            raise DemoError(f"{path}: no such file")
        video = open_video_file(path)
        return cls(path, video.fps, video.size, video.num_frames, video)

    @classmethod
    def camera(cls, index: int, default_fps: float) -> FrameSource:
        """Camera ``index`` through PyAV: Linux's /dev/videoN (v4l2), macOS's AVFoundation device N."""
        import av

        linux = sys.platform.startswith("linux")
        device, fmt = (f"/dev/video{index}", "v4l2") if linux else (str(index), "avfoundation")
        if linux and not os.path.exists(device):
            raise DemoError(
                f"no camera {device} on this machine (--webcam / DEMO.WEBCAM {index}); give a video instead"
            )
        try:
            container = av.open(device, format=fmt)
        except (av.FFmpegError, OSError) as e:
            raise DemoError(f"camera {device} cannot be opened: {e}") from None
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or default_fps)
        return cls(f"webcam{index}", fps, (stream.height, stream.width), None, container)

    def frames(self, limit: Optional[int] = None) -> Iterator[np.ndarray]:
        """RGB frames, at most ``limit``."""
        if not self.live:
            yield from read_video_frames(self._reader, limit)
            return
        for count, frame in enumerate(self._reader.decode(video=0)):
            if self._stop:
                return
            yield frame.to_ndarray(format="rgb24")
            if limit is not None and count + 1 >= limit:
                return

    def __enter__(self) -> FrameSource:
        if self.live and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._request_stop)
        return self

    def _request_stop(self, signum: int, frame: Any) -> None:
        print("demo: Ctrl-C: stopping after this frame (again to abort)", file=sys.stderr)
        self._stop = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "_previous"):
            signal.signal(signal.SIGINT, self._previous)
        self._reader.close()


def read_video_frames(video: PyAVVideo, max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
    """The RGB frames of an open PyAVVideo from the start; at the end, a video that stopped well
    before its header says raises VideoDecodeError (a truncated file)."""
    count, last = 0, 0.0
    for seconds, frame in video.frames():
        yield video.rgb(frame)
        count, last = count + 1, seconds
        if max_frames is not None and count >= max_frames:
            return
    video.check_ends_at(last, count)
