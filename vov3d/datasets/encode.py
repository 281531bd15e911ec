"""Write small videos with PyAV: test fixtures, demo datasets and the resize tool use it."""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Union

import av
import numpy as np
import torch
from av.video.reformatter import Interpolation

# Fast, good-enough settings per encoder; the CRF keeps flat test patterns exact to a few levels.
# x264 runs its plain C code (asm=0): its SSSE3 and later assembly encodes the same frames to other
# bytes, up to 38 levels apart once decoded, so a machine with other SIMD would write other videos.
_CODEC_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "18", "x264-params": "asm=0"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0"},
}
# Settings for videos to watch: x264's and libvpx's own speed-ups, any thread count.
_FAST_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "20"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0"},
}
# RGB to YUV in swscale's bit-exact mode: its SIMD code rounds a tenth of the samples one level
# away from its C code. PyAV 18 exposes the flags; older PyAV leaves the conversion to the encoder,
# so there the videos may differ between CPUs by a level.
BIT_EXACT_YUV = hasattr(Interpolation, "BITEXACT")
_TO_YUV = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT if BIT_EXACT_YUV else None


class VideoEncoder:
    """Encode RGB frames one at a time (``write``), then ``close``; a context manager.

    ``exact`` (the default) makes bytes that depend only on the frames and the arguments, not on
    the machine's cores, SIMD or load: the conversion and the encoder run one thread (x264's and
    libvpx's threads split the work, and so decide, by the core count) on code that rounds alike
    on every CPU (with PyAV 18 or newer, see BIT_EXACT_YUV). Without it the encoder uses every core
    and its SIMD code, for videos to watch (the demo). ``container_format`` names the container
    where the path's suffix does not (a temporary name).
    """

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        fps: float,
        codec: str = "libx264",
        gop_size: Optional[int] = None,
        exact: bool = True,
        container_format: Optional[str] = None,
    ) -> None:
        if height % 2 or width % 2:
            raise ValueError(f"height and width must be even for yuv420p, got {height}x{width}")
        if codec not in _CODEC_OPTIONS:
            raise ValueError(f"codec {codec!r} is not one of {', '.join(_CODEC_OPTIONS)}")
        options = dict(_CODEC_OPTIONS[codec]) if exact else _FAST_OPTIONS[codec]
        self.exact, self.size, self._closed = exact, (height, width), False
        self._container = av.open(path, "w", format=container_format)
        try:
            rate = Fraction(fps).limit_denominator(1001 * 1000)
            self._stream = self._container.add_stream(codec, rate=rate, options=options)
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
            self._stream.codec_context.thread_count = 1 if exact else 0
            if gop_size is not None:
                self._stream.codec_context.gop_size = gop_size
        except Exception:
            self._container.close()
            raise

    def write(self, array: np.ndarray) -> None:
        """Add one uint8 H x W x 3 RGB frame of the encoder's size."""
        if array.dtype != np.uint8 or array.shape != (*self.size, 3):
            raise ValueError(
                f"a frame must be uint8 {self.size[0]} x {self.size[1]} x 3, got {array.dtype} {array.shape}"
            )
        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        if BIT_EXACT_YUV and self.exact:
            frame = frame.reformat(format="yuv420p", interpolation=_TO_YUV, threads=1)
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        """Flush the encoder and finish the file (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.close()
        elif not self._closed:  # an error: release the file without finishing it (its caller discards it)
            self._closed = True
            self._container.close()


def write_video(
    path: str,
    frames: Union[np.ndarray, torch.Tensor],
    fps: float,
    codec: str = "libx264",
    gop_size: Optional[int] = None,
) -> None:
    """Encode ``frames`` (uint8, T x H x W x 3, RGB) to ``path``, exactly (``VideoEncoder``); the
    container follows the suffix. ``gop_size`` is the keyframe interval in frames (the encoder's
    default when None), so callers can make videos whose clips need a real seek. Height and width
    must be even (yuv420p)."""
    frames = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 T x H x W x 3, got {frames.dtype} {frames.shape}")
    with VideoEncoder(path, frames.shape[2], frames.shape[1], fps, codec, gop_size) as encoder:
        for array in frames:
            encoder.write(array)
