"""Test data: videos and JPEG folders whose pixels spell their frame numbers, and every frame of a
video decoded front to back (the configs and CSV writer shared with other packages: tests/helpers.py)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import av
import numpy as np
import torch
from PIL import Image

from vov3d.datasets.encode import write_video
from vov3d.datasets.timestamps import iter_frames

SSV2_TEMPLATES = [
    "Pushing something from left to right",
    "Putting something on something",
    "Holding something",
]


def numbered_frames(count: int, height: int, width: int, first: int = 0) -> np.ndarray:
    """uint8 T x H x W x 3 frames of one flat colour each: frame n has R, G, B = 16 * the base-16
    digits of n, plus 8. Flat colours survive compression and any resize or crop."""
    numbers = np.arange(first, first + count)
    digits = np.stack([numbers % 16, numbers // 16 % 16, numbers // 256 % 16], axis=-1)
    colours = (digits * 16 + 8).astype(np.uint8)
    return np.broadcast_to(colours[:, None, None, :], (count, height, width, 3)).copy()


def frame_numbers(frames: torch.Tensor) -> list[int]:
    """Read the numbers back from uint8 T x H x W x 3 frames (the mean colour of each)."""
    colours = frames.reshape(frames.shape[0], -1, 3).double().mean(1)
    digits = torch.round((colours - 8) / 16).long().clamp(0, 15)
    return (digits[:, 0] + 16 * digits[:, 1] + 256 * digits[:, 2]).tolist()


def make_video(path: Path, count: int, fps: float = 30, size: tuple[int, int] = (48, 64), **kwargs) -> str:
    """A numbered video; the codec follows the suffix (.mp4: H.264, .webm: VP9)."""
    codec = "libvpx-vp9" if path.suffix == ".webm" else "libx264"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(str(path), numbered_frames(count, *size), fps, codec=codec, **kwargs)
    return str(path)


_VPX = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


def make_vpx_webm(
    path: Path, codec: str, count: int, fps: int, gop_size: int, mislabel: str = "", size: tuple[int, int] = (48, 64)
) -> str:
    """A numbered VP8 / VP9 WebM with a keyframe every ``gop_size`` frames.

    ``mislabel="cues"``: the cues index every frame as a keyframe, while the blocks keep their true
    keyframe flags (a seek lands on inter frames, as in some published WebM files); ``"blocks"``:
    every block claims to be a keyframe too, so only a decode from the start can be trusted.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "1M"}
    keyframes: list[bool] = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(_VPX[codec], rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.codec_context.gop_size = gop_size
        frames = [av.VideoFrame.from_ndarray(a, format="rgb24") for a in numbered_frames(count, *size)]
        for frame in frames + [None]:
            for packet in stream.encode(frame):
                keyframes.append(packet.is_keyframe)
                packet.is_keyframe = packet.is_keyframe or bool(mislabel)  # the muxer cues every keyframe
                container.mux(packet)
    if mislabel == "cues":
        data = bytearray(path.read_bytes())
        for flags, key in zip(_simple_block_flags(data, 0, len(data)), keyframes):
            if not key:
                data[flags] &= 0x7F  # the SimpleBlock keyframe bit
        path.write_bytes(bytes(data))
    return str(path)


def _ebml_number(data: bytearray, pos: int, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length number at ``pos`` (an element ID keeps its length marker)."""
    length = 1
    while not data[pos] & (0x80 >> (length - 1)):
        length += 1
    value = data[pos] if keep_marker else data[pos] & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = value << 8 | byte
    return value, pos + length


def _simple_block_flags(data: bytearray, start: int, end: int) -> Iterator[int]:
    """Offsets of the flag bytes of the SimpleBlocks inside Segment / Cluster elements, in order."""
    pos = start
    while pos < end:
        element, pos = _ebml_number(data, pos, keep_marker=True)
        size, pos = _ebml_number(data, pos, keep_marker=False)
        if element in (0x18538067, 0x1F43B675):  # Segment, Cluster
            yield from _simple_block_flags(data, pos, pos + size)
        elif element == 0xA3:  # SimpleBlock: track number, 16-bit timecode, flags
            yield _ebml_number(data, pos, keep_marker=False)[1] + 2
        pos += size


def make_jpeg_folder(folder: Path, video_id: str, count: int, size: tuple[int, int] = (48, 64)) -> list[str]:
    """Numbered JPEG frames ``{id}_{k:06d}.jpg`` (k from 1); paths relative to folder's parent."""
    folder.mkdir(parents=True, exist_ok=True)
    relative = []
    for k, frame in enumerate(numbered_frames(count, *size)):
        name = f"{video_id}_{k + 1:06d}.jpg"
        Image.fromarray(frame).save(folder / name, quality=95)
        relative.append(f"{folder.name}/{name}")
    return relative


def write_frame_list(path: Path, videos: dict[str, list[str]]) -> None:
    rows = ["original_vido_id video_id frame_id path labels"]
    for number, (video_id, frames) in enumerate(videos.items()):
        rows += [f'{video_id} {number} {k} {frame} ""' for k, frame in enumerate(frames)]
    path.write_text("\n".join(rows) + "\n")


def make_ssv2(root: Path, counts: dict[str, int], frames: bool = True, webm: bool = False) -> None:
    """An SSv2 layout in root: annotations (all videos in both splits), numbered JPEG folders
    under root/frames with frame lists train.csv / val.csv, and/or .webm files under root/videos.
    Video i has label i % 3."""
    (root / "something-something-v2-labels.json").write_text(
        json.dumps({t: str(i) for i, t in enumerate(SSV2_TEMPLATES)})
    )
    entries = []
    for i, video_id in enumerate(counts):
        template = SSV2_TEMPLATES[i % 3].replace("something", "[something]")
        entries.append({"id": video_id, "label": "x", "template": template, "placeholders": ["x"]})
    for split in ("train", "validation"):
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(entries, indent=1))
    if frames:
        lists = {v: make_jpeg_folder(root / "frames" / v, v, n) for v, n in counts.items()}
        write_frame_list(root / "train.csv", lists)
        write_frame_list(root / "val.csv", lists)
    if webm:
        for video_id, count in counts.items():
            make_video(root / "videos" / f"{video_id}.webm", count, fps=12)


def make_ssv1(root: Path, counts: dict[str, int]) -> None:
    """An SSv1 layout: labels csv, split csvs (video_id;template), JPEG frames and frame lists."""
    (root / "something-something-v1-labels.csv").write_text("\n".join(SSV2_TEMPLATES) + "\n")
    lines = [f"{v};{SSV2_TEMPLATES[i % 3]}" for i, v in enumerate(counts)]
    for split in ("train", "validation"):
        (root / f"something-something-v1-{split}.csv").write_text("\n".join(lines) + "\n")
    lists = {v: make_jpeg_folder(root / "frames" / v, v, n) for v, n in counts.items()}
    write_frame_list(root / "train.csv", lists)
    write_frame_list(root / "val.csv", lists)


def reference_frames(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame decoded front to back, with its time in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin, base = stream.start_time or 0, float(stream.time_base)
        frames = iter_frames(container.demux(stream), stream)
        timed = [((ts - origin) * base, f.to_ndarray(format="rgb24")) for ts, f in frames]
    return np.array([t for t, _ in timed]), [a for _, a in timed]


@functools.lru_cache(maxsize=4)
def _every_frame(path: str) -> tuple[float, int, Optional[int], int, list[int], list[np.ndarray]]:
    """fps, header frame count (our estimate where it is 0), duration, the pts windows count from,
    and every frame's raw pts and RGB pixels, decoded front to back."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        fps, count, duration, origin = float(stream.average_rate), stream.frames, stream.duration, 0
        if count == 0 and duration:  # WebM, MPEG-TS: no count in the header (the original divides by
            count = round(duration * stream.time_base * fps)  # zero): windows from the first pts
            origin = stream.start_time or 0
        decoded = [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)]
    return fps, count, duration, origin, [pts for pts, _ in decoded], [array for _, array in decoded]


def original_kinetics_clip(
    path: str,
    num_frames: int,
    sampling_rate: int,
    view: Optional[int] = None,
    num_views: int = 1,
    rng: Optional[np.random.Generator] = None,
    target_fps: float = 30,
) -> np.ndarray:
    """The frames (T x H x W x 3) the original Kinetics loader takes, its rule written out plainly.

    ``clip_size = sampling_rate * num_frames / target_fps * fps``; with ``delta = max(n - clip_size, 0)``
    the start is ``s = delta * k / K`` for view k of K, ``uniform(0, delta)`` from ``rng`` for
    training; ``e = s + clip_size - 1``. The original decodes forward, skips frames with pts below
    ``int(s * d / n)``, keeps those up to ``int(e * d / n)`` and also keeps the first frame that
    comes after that (its read-ahead buffer of size 0 still stores one frame before it stops), so
    the list is the window's frames plus the next one (n: the header's frame count, d: the
    stream's duration). It takes the list, sorted by pts, at positions
    ``linspace(0, clip_size - 1, num_frames)`` (float32, truncated) clamped to the list. Without a
    duration it keeps every frame with pts >= 0 and takes ``linspace(s, e, num_frames)`` of that
    list, with n its length. Where the header has a duration but no frame count (WebM, MPEG-TS; the
    original divides by zero) n is duration x fps and the window counts from the first pts.
    """
    fps, count, duration, origin, pts, arrays = _every_frame(str(path))
    clip_size = sampling_rate * num_frames / target_fps * fps

    def start_end(n: int) -> tuple[float, float]:
        delta = max(n - clip_size, 0)
        start = rng.uniform(0, delta) if view is None else delta * view / num_views
        return start, start + clip_size - 1

    if duration is None:
        listed = _kept(pts, arrays, 0, math.inf)
        start, end = start_end(len(listed))
        positions = torch.linspace(start, end, num_frames)
    else:
        start, end = start_end(count)
        low, high = origin + int(start * (duration / count)), origin + int(end * (duration / count))
        listed = _kept(pts, arrays, low, high)
        positions = torch.linspace(0, clip_size - 1, num_frames)
    return np.stack([listed[i] for i in torch.clamp(positions, 0, len(listed) - 1).long().tolist()])


def _kept(pts: list[int], arrays: list[np.ndarray], low: float, high: float) -> list[np.ndarray]:
    """The frames the original keeps from a decode, in the decoder's order: from pts ``low`` on,
    up to ``high`` and the first one after it; sorted by pts."""
    kept = {}
    for p, array in zip(pts, arrays):
        if p < low:
            continue
        kept[p] = array
        if p > high:
            break
    return [kept[p] for p in sorted(kept)]
