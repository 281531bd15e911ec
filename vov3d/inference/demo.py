"""The demo: a trained model's clip slid over one video (or a camera), the top classes drawn on
every frame of an H.264 copy, a timeline of the top classes and a JSON of the windows, and, with
Grad-CAM, where in each window's clip the evidence lies.

Each window is one "video" to the test split of TEST.DATASET: its clip is the test's clip of the
window (``ClipDataset.read_view``: Kinetics spreads its frames over the window as over a video,
Something-Something takes a frame of each segment) and its spatial crops are the test's
(TEST.NUM_SPATIAL_CROPS), combined as the test combines views. Nothing of the sampling is
re-derived here. The outputs are written under temporary names and renamed together at the end,
so a broken video leaves no output behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn

from vov3d.datasets.clip_dataset import ClipDataset
from vov3d.datasets.encode import VideoEncoder
from vov3d.engine.runtime import Execution
from vov3d.utils.atomic import atomic_path
from vov3d.visualization import draw
from vov3d.visualization.colormap import overlay
from vov3d.visualization.gradcam import grad_cam

from .predict import score_video_views
from .windows import FrameSpan, Span, slide


class DemoError(ValueError):
    """A demo input that cannot be used: no camera, a window that does not fit, nothing decoded."""


@dataclass
class Window:
    """One window's combined class scores, and its Grad-CAM when asked for."""

    span: Span
    fps: float
    scores: torch.Tensor
    cam: Optional[np.ndarray] = None  # the clip's crop with the heat over it, uint8 T x h x w x 3
    cam_class: int = -1

    @property
    def seconds(self) -> tuple[float, float]:
        return self.span.start / self.fps, (self.span.start + self.span.length) / self.fps

    def top(self, k: int) -> list[tuple[int, float]]:
        values, indices = self.scores.topk(min(k, self.scores.numel()))
        return list(zip(indices.tolist(), values.tolist()))


@dataclass
class GradCamRequest:
    """The layer whose Grad-CAM the demo draws, of which class, in which colour map."""

    layer: nn.Module
    target: Optional[int] = None  # None: each window's top class
    colormap: str = "viridis"


@dataclass
class WindowScorer:
    """Scores a window as the test scores a video: its temporal views (one for Kinetics, whose
    window is one clip's span) times its spatial crops, combined (``score_video_views``)."""

    model: nn.Module
    dataset: ClipDataset
    execution: Execution
    num_classes: int
    method: str
    fps: float
    path: str
    gradcam: Optional[GradCamRequest] = None

    def __call__(self, span: Span, frames: torch.Tensor) -> Window:
        source, data = FrameSpan(frames, self.fps, self.path), self.dataset
        crops = data.num_spatial_crops
        clips = torch.stack(
            [
                data.transform(decoded, crop, data.rng)
                for decoded in (data.read_view(source, view) for view in range(data.num_temporal_views))
                for crop in range(crops)
            ]
        )
        with torch.no_grad():
            scores = score_video_views(self.model, clips, self.execution, self.num_classes, self.method, len(clips))
        window = Window(span, self.fps, scores)
        if self.gradcam is not None:
            clip = clips[(data.num_temporal_views // 2) * crops + crops // 2]  # the middle view's centre crop
            target = int(scores.argmax()) if self.gradcam.target is None else self.gradcam.target
            inputs = self.execution.to_input(clip[None])
            heat, _ = grad_cam(self.model, inputs, self.gradcam.layer, torch.tensor([target]))
            window.cam, window.cam_class = overlay(clip, heat[0].cpu(), self.gradcam.colormap).numpy(), target
        return window


@dataclass
class DemoOutputs:
    """Where the demo writes: the labelled video, and beside it the timeline, the windows and the
    Grad-CAM video and strip."""

    video: str

    def beside(self, suffix: str) -> str:
        return os.path.splitext(self.video)[0] + suffix

    @property
    def timeline(self) -> str:
        return self.beside(".timeline.png")

    @property
    def windows(self) -> str:
        return self.beside(".windows.json")

    @property
    def still(self) -> str:
        return self.beside(".still.png")

    @property
    def gradcam_video(self) -> str:
        return self.beside(".gradcam.mp4")

    @property
    def gradcam_strip(self) -> str:
        return self.beside(".gradcam.png")


@dataclass
class DemoResult:
    windows: list[Window] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0  # wall-clock time of the whole run
    written: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)

    def realtime_factor(self, fps: float) -> float:
        """Video seconds per second of work: above 1 is faster than real time."""
        return self.frames / fps / max(self.seconds, 1e-9)


def output_size(height: int, width: int, set_width: int = 0, set_height: int = 0) -> tuple[int, int]:
    """(height, width) of the output video: the input's, or the set width and/or height (the
    other keeping the aspect ratio), rounded to even numbers as H.264's 4:2:0 needs."""
    if set_width and not set_height:
        set_height = round(height * set_width / width)
    elif set_height and not set_width:
        set_width = round(width * set_height / height)
    h, w = (set_height, set_width) if set_width else (height, width)
    return max(2, h // 2 * 2), max(2, w // 2 * 2)


def run_demo(
    frames: Iterable[np.ndarray],
    scorer: WindowScorer,
    outputs: DemoOutputs,
    names: Sequence[str],
    length: int,
    stride: int,
    size: tuple[int, int],
    output_fps: float,
    topk: int = 3,
    progress: Optional[Any] = None,
    still: Optional[int] = None,
) -> DemoResult:
    """Slide ``length``-frame windows every ``stride`` frames over ``frames`` and write the outputs
    (all or none); with ``still``, that frame of the labelled video as a PNG too. ``progress`` (a
    tqdm bar) is advanced by one per frame."""
    result = DemoResult()
    started = time.perf_counter()
    height, width = size
    cams = GradCamWriter(outputs, names) if scorer.gradcam is not None else None
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(outputs.video, suffix=".mp4"))
        encoder = stack.enter_context(VideoEncoder(tmp, width, height, output_fps, exact=False, container_format="mp4"))
        for labelled in slide(frames, length, stride, scorer):
            window = labelled.window
            if not result.windows or result.windows[-1] is not window:
                result.windows.append(window)
                if cams is not None:
                    cams.add(stack, window)
            start, end = window.seconds
            lines = [(names[c], p) for c, p in window.top(topk)]
            header = f"{labelled.index / scorer.fps:6.2f} s   window {start:.2f}-{end:.2f} s"
            drawn = draw.label_frame(draw.resize(labelled.frame, width, height), lines, header)
            encoder.write(drawn)
            if labelled.index == still:
                _write_png(stack, outputs.still, drawn)
            result.frames += 1
            if progress is not None:
                progress.update(1)
        if not result.frames:
            raise DemoError(f"{scorer.path}: no frame could be decoded")
        if still is not None and still >= result.frames:
            raise DemoError(f"{scorer.path}: the still's frame {still} is past the end ({result.frames} frames)")
        encoder.close()  # before the files beside it are written: all are renamed only if it finishes
        _write_json(stack, outputs.windows, result.windows, names, scorer, length, stride)
        _write_png(stack, outputs.timeline, _timeline(result.windows, names, result.frames / scorer.fps))
        result.written = [outputs.video, outputs.timeline, outputs.windows]
        result.written += [outputs.still] if still is not None else []
        if cams is not None:
            cams.finish(stack)
            result.written += [outputs.gradcam_video, outputs.gradcam_strip]
    result.seconds = time.perf_counter() - started
    return result


def _timeline(windows: list[Window], names: Sequence[str], duration: float) -> np.ndarray:
    """The chart of the classes that are ever among a window's top 1 (at most 8, the most
    probable first), else the highest on average."""
    scores = torch.stack([w.scores for w in windows])
    best = scores.max(dim=0).values
    tops = sorted(set(scores.argmax(dim=1).tolist()), key=lambda c: -float(best[c]))[: len(draw.PALETTE)]
    if len(tops) < 3:
        extra = [c for c in scores.mean(dim=0).argsort(descending=True).tolist() if c not in tops]
        tops += extra[: min(3, len(names)) - len(tops)]
    times = [sum(w.seconds) / 2 for w in windows]
    return draw.timeline(times, scores[:, tops], [names[c] for c in tops], duration)


def _write_json(
    stack: contextlib.ExitStack,
    path: str,
    windows: list[Window],
    names: Sequence[str],
    scorer: WindowScorer,
    length: int,
    stride: int,
) -> None:
    document = {
        "video": scorer.path,
        "fps": scorer.fps,
        "window_frames": length,
        "stride_frames": stride,
        "views": scorer.dataset.num_views,  # temporal views x spatial crops of each window
        "windows": [
            {
                "start": w.seconds[0],
                "end": w.seconds[1],
                "first_frame": w.span.start,
                "frames": w.span.length,
                "top": [{"index": c, "label": names[c], "prob": p} for c, p in w.top(5)],
            }
            for w in windows
        ],
    }
    tmp = stack.enter_context(atomic_path(path))
    with open(tmp, "w") as f:
        json.dump(document, f, indent=1)


def _write_png(stack: contextlib.ExitStack, path: str, image: np.ndarray) -> None:
    from PIL import Image

    tmp = stack.enter_context(atomic_path(path))
    Image.fromarray(image).save(tmp, format="PNG")


# Rows of the Grad-CAM strip: windows spread evenly over the video.
STRIP_ROWS = 8
CAM_SIZE = 192  # pixels of the shorter side of the Grad-CAM video's frames


class GradCamWriter:
    """Each window's clip with its heat, written to the Grad-CAM video as the window is scored (at
    the clip's own frame rate, one window after another), and a strip of STRIP_ROWS windows spread
    over the video as a PNG at the end. Only the windows the strip may still show are kept: every
    ``step``-th, the step doubling whenever more than twice STRIP_ROWS are kept."""

    def __init__(self, outputs: DemoOutputs, names: Sequence[str]) -> None:
        self.outputs, self.names = outputs, names
        self.encoder: Optional[VideoEncoder] = None
        self.kept: list[tuple[int, Window]] = []
        self.count, self.step = 0, 1

    def label(self, window: Window) -> str:
        start, end = window.seconds
        c = window.cam_class
        return f"{start:.2f}-{end:.2f} s: {self.names[c]} ({100 * float(window.scores[c]):.0f}%)"

    def add(self, stack: contextlib.ExitStack, window: Window) -> None:
        cam = window.cam
        if self.encoder is None:
            h, w = output_size(*cam.shape[1:3], set_height=CAM_SIZE)
            tmp = stack.enter_context(atomic_path(self.outputs.gradcam_video, suffix=".mp4"))
            fps = len(cam) / max(window.seconds[1] - window.seconds[0], 1e-6)
            self.encoder = stack.enter_context(VideoEncoder(tmp, w, h, fps, exact=False, container_format="mp4"))
        height, width = self.encoder.size
        for frame in cam:
            self.encoder.write(draw.label_frame(draw.resize(frame, width, height), [], self.label(window)))
        if self.count % self.step == 0:
            self.kept.append((self.count, window))
            if len(self.kept) > 2 * STRIP_ROWS:
                self.step *= 2
                for i, dropped in self.kept:
                    if i % self.step:
                        dropped.cam = None  # the run keeps every window's scores, not its frames
                self.kept = [(i, w) for i, w in self.kept if i % self.step == 0]
        else:
            window.cam = None
        self.count += 1

    def finish(self, stack: contextlib.ExitStack) -> None:
        self.encoder.close()
        picks = sorted(
            {round(i * (len(self.kept) - 1) / max(STRIP_ROWS - 1, 1)) for i in range(min(STRIP_ROWS, len(self.kept)))}
        )
        rows = [self.kept[i][1] for i in picks]
        _write_png(stack, self.outputs.gradcam_strip, draw.strip([w.cam for w in rows], [self.label(w) for w in rows]))
