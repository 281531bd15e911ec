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
# RGB to YUV in swscale's bit-exact mode: its SIMD code rounds a tenth of the samples one level
# away from its C code. PyAV 18 exposes the flags; older PyAV leaves the conversion to the encoder,
# so there the videos may differ between CPUs by a level.
BIT_EXACT_YUV = hasattr(Interpolation, "BITEXACT")
_TO_YUV = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT if BIT_EXACT_YUV else None


def write_video(
    path: str,
    frames: Union[np.ndarray, torch.Tensor],
    fps: float,
    codec: str = "libx264",
    gop_size: Optional[int] = None,
) -> None:
    """Encode ``frames`` (uint8, T x H x W x 3, RGB) to ``path``; the container follows the suffix.

    ``gop_size`` is the keyframe interval in frames (the encoder's default when None), so callers
    can make videos whose clips need a real seek. Height and width must be even (yuv420p).

    The bytes depend only on the frames and the arguments, not on the machine's cores, SIMD or load:
    the conversion and the encoder run one thread (x264's and libvpx's threads split the work, and
    so decide, by the core count) on code that rounds alike on every CPU (with PyAV 18 or newer,
    see BIT_EXACT_YUV).
    """
    frames = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 T x H x W x 3, got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"height and width must be even for yuv420p, got {height}x{width}")
    if codec not in _CODEC_OPTIONS:
        raise ValueError(f"codec {codec!r} is not one of {', '.join(_CODEC_OPTIONS)}")
    rate = Fraction(fps).limit_denominator(1001 * 1000)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=rate, options=dict(_CODEC_OPTIONS[codec]))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if BIT_EXACT_YUV:
                frame = frame.reformat(format="yuv420p", interpolation=_TO_YUV, threads=1)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
