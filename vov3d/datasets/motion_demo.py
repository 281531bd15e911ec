"""A generated video dataset that only temporal modelling can solve.

Each video shows a shape on a textured background that moves left or right, up or down, turns
clockwise or anticlockwise, or grows or shrinks. The classes come in pairs that are the same
video played backwards, so every single frame is equally likely under both classes of a pair:
a network that looks at frames one at a time can do no better than chance between them.
Videos are real H.264 files with Kinetics-format CSVs, so the demo exercises the whole pipeline.
The command is ``vov3d/cli/make_demo_dataset.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from vov3d.datasets.encode import write_video
from vov3d.datasets.prepare import parallel
from vov3d.utils.atomic import atomic_path
from vov3d.utils.cpus import usable_cpus

# Pairs (2k, 2k + 1) are time reversals of each other.
CLASSES = [
    "moving right",
    "moving left",
    "moving down",
    "moving up",
    "turning clockwise",
    "turning anticlockwise",
    "approaching",
    "receding",
]
SPLITS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class DemoSpec:
    """Size of the generated set; the defaults are what the quick-start config trains on."""

    train_per_class: int = 100
    val_per_class: int = 10
    test_per_class: int = 20
    width: int = 80
    height: int = 64
    fps: int = 30
    min_frames: int = 24
    max_frames: int = 32


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random colour texture, (h, w, 3) float in [0, 1]."""
    coarse = rng.random((h // 8 + 2, w // 8 + 2, 3))
    ys = np.linspace(0, coarse.shape[0] - 1.001, h)
    xs = np.linspace(0, coarse.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    c = coarse
    top = c[y0][:, x0] * (1 - fx) + c[y0][:, x0 + 1] * fx
    bottom = c[y0 + 1][:, x0] * (1 - fx) + c[y0 + 1][:, x0 + 1] * fx
    texture = top * (1 - fy) + bottom * fy
    tint = rng.random(3)
    return 0.35 * texture + 0.35 * tint + 0.1


def _shape_mask(
    kind: int, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, size: float, angle: float
) -> np.ndarray:
    """A rectangle, a triangle or an ellipse centred at (cx, cy), turned by ``angle``."""
    cos, sin = np.cos(angle), np.sin(angle)
    u = (xx - cx) * cos + (yy - cy) * sin
    v = -(xx - cx) * sin + (yy - cy) * cos
    if kind == 0:
        return (np.abs(u) <= size) & (np.abs(v) <= size * 0.45)
    if kind == 1:
        return (v >= -size * 0.6) & (v <= size * 0.9 - 1.6 * np.abs(u))
    return (u / size) ** 2 + (v / (size * 0.5)) ** 2 <= 1.0


@dataclass(frozen=True)
class ShapePath:
    """Where the shape is in each frame: centre (pixels), angle (radians) and relative size."""

    cx: np.ndarray
    cy: np.ndarray
    angle: np.ndarray
    scale: np.ndarray


def shape_path(motion: int, t: int, rng: np.random.Generator, spec: DemoSpec) -> ShapePath:
    """The path of a forward video of ``motion`` (0 horizontal, 1 vertical, 2 rotation, 3 scale).

    The path is centred on the frame, so every training and test crop sees the shape, and each
    motion is large between the frames a clip samples: a third of the frame's width or height of
    travel, more than half a turn, or a twofold growth over the video. What does not move stays
    at a random point of the range it would move over: one frame of any class then has the same
    distribution of place, angle and size, so a single frame does not even tell the motion.
    """
    h, w = spec.height, spec.width
    ramp = np.linspace(-0.5, 0.5, t)

    def course(moves: bool) -> np.ndarray:
        return ramp if moves else np.full(t, rng.uniform(-0.5, 0.5))

    cx = w * (0.5 + rng.uniform(-0.05, 0.05) + rng.uniform(0.35, 0.45) * course(motion == 0))
    cy = h * (0.5 + rng.uniform(-0.05, 0.05) + rng.uniform(0.35, 0.45) * course(motion == 1))
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(1.0, 1.3) * np.pi * course(motion == 2)
    scale = rng.uniform(0.7, 0.75) * 2.0 ** (course(motion == 3) + 0.5)
    return ShapePath(cx, cy, angle, scale)


def render_video(label: int, rng: np.random.Generator, spec: DemoSpec) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of one video of class ``label``."""
    return render_video_and_shape(label, rng, spec)[0]


def render_video_and_shape(label: int, rng: np.random.Generator, spec: DemoSpec) -> tuple[np.ndarray, np.ndarray]:
    """``render_video``'s frames and where the shape is: a (T, H, W) bool mask per frame (what
    Grad-CAM's test compares the heat with)."""
    h, w = spec.height, spec.width
    t = int(rng.integers(spec.min_frames, spec.max_frames + 1))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    background = _background(rng, h, w)
    colour = rng.random(3) * 0.8 + 0.2
    if abs(colour.mean() - background.mean()) < 0.3:  # a dark shape on a light ground, or the reverse
        colour = colour * 0.35 if background.mean() > 0.5 else 0.65 + colour * 0.35
    kind = int(rng.integers(0, 3))
    size = float(rng.uniform(0.2, 0.25) * min(h, w))
    path = shape_path(label // 2, t, rng, spec)
    frames = np.empty((t, h, w, 3), dtype=np.uint8)
    masks = np.empty((t, h, w), dtype=bool)
    for i in range(t):
        masks[i] = _shape_mask(kind, xx, yy, path.cx[i], path.cy[i], size * path.scale[i], path.angle[i])
        frame = np.where(masks[i, ..., None], colour, background)
        frames[i] = np.clip(frame * 255 + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    # The second class of each pair is the first one played backwards.
    if label % 2:
        return frames[::-1].copy(), masks[::-1].copy()
    return frames, masks


def render_sequence(labels: list[int], seed: int, spec: DemoSpec) -> np.ndarray:
    """One longer video: a clip of each of ``labels`` in turn, for the demo tool to label over time."""
    clips = [render_video(label, np.random.default_rng([seed, 3, i, label]), spec) for i, label in enumerate(labels)]
    return np.concatenate(clips)


def _video_path(split: str, label: int, index: int) -> str:
    return os.path.join("videos", split, f"{label}_{index:04d}.mp4")


def _write_one(job: tuple[str, str, int, int, DemoSpec, int]) -> None:
    out_dir, split, label, index, spec, seed = job
    # One generator per video, so the set is the same whatever the number of processes.
    rng = np.random.default_rng([seed, SPLITS[split], index, label])
    write_video(os.path.join(out_dir, _video_path(split, label, index)), render_video(label, rng, spec), spec.fps)


def make_motion_dataset(
    out_dir: str, spec: DemoSpec = DemoSpec(), seed: int = 0, processes: Optional[int] = None
) -> None:
    """Write ``videos/<split>/*.mp4``, Kinetics CSVs ``{train,val,test}.csv`` (paths relative to
    ``out_dir``, to be used as DATA.PATH_PREFIX) and ``classes.txt``, rendering and encoding in
    ``processes`` processes (default: one per CPU core)."""
    per_class = {"train": spec.train_per_class, "val": spec.val_per_class, "test": spec.test_per_class}
    with open(os.path.join(_mkdir(out_dir), "classes.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    jobs = []
    for split, count in per_class.items():
        _mkdir(out_dir, "videos", split)
        jobs += [(out_dir, split, label, i, spec, seed) for i in range(count) for label in range(len(CLASSES))]
    for _ in parallel(_write_one, jobs, min(processes or usable_cpus(), len(jobs))):
        pass
    for split in per_class:  # written last and atomically: an existing CSV means the split is complete
        lines = [f"{_video_path(split, label, i)} {label}" for _, s, label, i, *_ in jobs if s == split]
        with atomic_path(os.path.join(out_dir, f"{split}.csv")) as tmp, open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")


def _mkdir(*parts: str) -> str:
    path = os.path.join(*parts)
    os.makedirs(path, exist_ok=True)
    return path
