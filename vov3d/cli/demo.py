"""``demo``: what a trained model predicts along a video, and where it looks.

    python tools/demo.py --cfg configs/quickstart/vov3d_motion.yaml --checkpoint output/quickstart \\
        demo_data/sequence.mp4 [--gradcam] [KEY VALUE ...]

The test's clip (and its spatial crops) slides over the video; every frame of an H.264 copy gets
the top-k classes of its window drawn on it; beside it go a timeline of the top classes (.png)
and the windows' scores (.json), and with ``--gradcam`` the Grad-CAM of each window's clip (.mp4
and a .png strip). ``--webcam N`` reads camera N live until Ctrl-C or ``--max-seconds``. The
original's DEMO.* keys work as there (INPUT_VIDEO, OUTPUT_FILE, LABEL_FILE_PATH, WEBCAM, BUFFER_SIZE,
DISPLAY_WIDTH / HEIGHT, OUTPUT_FPS, FPS); ``run_net.py ... DEMO.ENABLE True`` runs it with
TEST.CHECKPOINT_FILE_PATH. Exit code 0 when done, 1 when the video cannot be read (nothing is
written), 2 for a wrong command line, config, checkpoint or label file. Installed as ``vov3d-demo``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

import av
import torch.nn as nn
from tqdm import tqdm

from vov3d.checkpoint import CheckpointError
from vov3d.config import CfgNode, ConfigError, cfg_error, load_config
from vov3d.datasets import AnnotationError, VideoDecodeError, build_dataset
from vov3d.datasets.class_names import read_class_names
from vov3d.engine.runtime import Execution
from vov3d.inference import load_trained
from vov3d.inference.demo import (
    DemoError,
    DemoOutputs,
    GradCamRequest,
    WindowScorer,
    output_size,
    run_demo,
)
from vov3d.inference.frame_source import FrameSource
from vov3d.visualization.colormap import COLORMAPS
from vov3d.visualization.gradcam import DEFAULT_LAYER, GradCamUnavailable, grad_cam_layers

from .args import add_overrides, parse_with_overrides
from .model_args import DeviceError, add_model_arguments, resolve_device

logger = logging.getLogger("vov3d.demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="demo.py",
        description="Label a video over time with a trained model (an MP4 with the top classes drawn, a timeline, "
        "the windows as JSON; Grad-CAM with --gradcam).",
        epilog="Config overrides: KEY VALUE pairs after the video (e.g. TEST.NUM_SPATIAL_CROPS 1) or after --opts.",
    )
    add_model_arguments(parser)
    parser.add_argument("videos", nargs="*", metavar="VIDEO", help="the video (default DEMO.INPUT_VIDEO)")
    parser.add_argument("--webcam", type=int, metavar="N", help="read camera N live instead (DEMO.WEBCAM)")
    parser.add_argument("--output", metavar="FILE.mp4", help="the labelled video (DEMO.OUTPUT_FILE)")
    parser.add_argument("--labels", metavar="FILE", help="class names (DEMO.LABEL_FILE_PATH; default the checkpoint's)")
    parser.add_argument("--topk", type=int, default=3, help="classes drawn per frame (default 3)")
    parser.add_argument(
        "--stride",
        type=float,
        metavar="SECONDS",
        help="time between window starts (default: the window less DEMO.BUFFER_SIZE frames)",
    )
    parser.add_argument(
        "--window",
        type=float,
        metavar="SECONDS",
        help="window length where a clip spans a whole video (Something-Something; default 4); Kinetics' is its clip",
    )
    parser.add_argument("--width", type=int, help="output width, the height in proportion (DEMO.DISPLAY_WIDTH)")
    parser.add_argument("--gradcam", action="store_true", help="also write Grad-CAM of each window (needs captum)")
    parser.add_argument(
        "--gradcam-layer", help="module path of the layer (default: GRAD_CAM.LAYER_LIST's first, else s5)"
    )
    parser.add_argument("--gradcam-class", help="class name or index to explain (default: each window's top class)")
    parser.add_argument(
        "--still", type=float, metavar="SECONDS", help="also write the labelled frame at this time as a PNG"
    )
    parser.add_argument("--max-seconds", type=float, help="stop after this much of the video (or of the camera)")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    add_overrides(parser)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser()
    args = parse_with_overrides(parser, argv, after="videos", optional=True)
    if len(args.videos) > 1:
        parser.error(f"one video at a time, got {len(args.videos)}: {' '.join(args.videos)}")
    args.video = args.videos[0] if args.videos else None
    if args.topk < 1:
        parser.error("--topk must be 1 or more")
    if args.still is not None and args.still < 0:
        parser.error("--still must be 0 or more")
    for name in ("stride", "window", "max_seconds"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be more than 0")
    return args


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    """The config with the overrides, then the flags that stand for DEMO keys."""
    opts = ["LOG_MODEL_INFO", "False"] + list(args.opts)
    flags = {
        "DEMO.INPUT_VIDEO": args.video,
        "DEMO.WEBCAM": args.webcam,
        "DEMO.OUTPUT_FILE": args.output,
        "DEMO.LABEL_FILE_PATH": args.labels,
        "DEMO.DISPLAY_WIDTH": args.width,
    }
    for key, value in flags.items():
        if value is not None:
            opts += [key, str(value)]
    return load_config([args.cfg], opts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = setup_cfg(args)
    except ConfigError as e:
        print(f"demo: config error: {e}", file=sys.stderr)
        return 2
    return demo(cfg, args.checkpoint, args)


def demo(cfg: CfgNode, checkpoint: str, args: Optional[argparse.Namespace] = None) -> int:
    """Run the demo of ``cfg`` (its DEMO keys) with the model of ``checkpoint``; ``args`` are the
    command line's other choices (run_net passes none: the defaults, on the device NUM_GPUS says)."""
    if args is None:
        device = "cuda" if cfg.NUM_GPUS > 0 else "cpu"
        args = parse_args(["--cfg", "-", "--checkpoint", checkpoint, "--device", device])
    try:
        plan = DemoPlan.from_cfg(cfg, checkpoint, args)
    except ConfigError as e:
        print(f"demo: config error: {e}", file=sys.stderr)
        return 2
    except (AnnotationError, CheckpointError, DeviceError, DemoError, GradCamUnavailable) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    except VideoDecodeError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    return plan.run()


@dataclass
class DemoPlan:
    """The model, the windows and the outputs of one demo run, all checked before a frame is read."""

    cfg: CfgNode
    args: argparse.Namespace
    source: FrameSource
    scorer: WindowScorer
    names: list[str]
    outputs: DemoOutputs
    length: int  # frames of a window
    stride: int  # frames between window starts

    @classmethod
    def from_cfg(cls, cfg: CfgNode, checkpoint: str, args: argparse.Namespace) -> DemoPlan:
        outputs = DemoOutputs(cfg.DEMO.OUTPUT_FILE or os.path.join(cfg.OUTPUT_DIR, "demo", f"{_stem(cfg)}.mp4"))
        if not outputs.video.lower().endswith(".mp4"):
            raise cfg_error(cfg, "DEMO.OUTPUT_FILE", f"{outputs.video}: the demo writes an H.264 .mp4 file")
        device = resolve_device(args.device)
        model, stored = load_trained(cfg, checkpoint, device, args.trust_checkpoint)
        labels = cfg.DEMO.LABEL_FILE_PATH
        names = read_class_names(labels, cfg.MODEL.NUM_CLASSES) if labels else stored
        names = names or [str(i) for i in range(cfg.MODEL.NUM_CLASSES)]
        gradcam = _gradcam_request(cfg, args, model, names) if args.gradcam else None
        source = (
            FrameSource.camera(cfg.DEMO.WEBCAM, cfg.DEMO.FPS)
            if cfg.DEMO.WEBCAM >= 0
            else FrameSource.video(cfg.DEMO.INPUT_VIDEO)
        )
        try:
            dataset = build_dataset(cfg, "test", paths=[source.name], labels=[0], skip_broken=False)
            span = dataset.window_frames(source.fps)
            if span is not None:  # Kinetics: the window is one clip's span, so its temporal views are one
                dataset = build_dataset(
                    cfg, "test", paths=[source.name], labels=[0], skip_broken=False, num_temporal_views=1
                )
            length = _window_length(cfg, args, span, source.fps)
            stride = _window_stride(cfg, args, length, source.fps)
            if args.still is not None and source.num_frames and round(args.still * source.fps) >= source.num_frames:
                raise DemoError(
                    f"--still {args.still} s is past the end of {source.name} ({source.num_frames / source.fps:.2f} s)"
                )
        except BaseException:
            source.__exit__(None, None, None)
            raise
        scorer = WindowScorer(
            model, dataset, Execution.from_cfg(cfg, device), cfg.MODEL.NUM_CLASSES, cfg.DATA.ENSEMBLE_METHOD,
            source.fps, source.name, gradcam,
        )  # fmt: skip
        return cls(cfg, args, source, scorer, names, outputs, length, stride)

    def run(self) -> int:
        """Label the frames and write the outputs; 0 when done, 1 when the video cannot be read or
        the outputs cannot be written (and then nothing is)."""
        cfg, source, args = self.cfg, self.source, self.args
        size = output_size(*source.size, cfg.DEMO.DISPLAY_WIDTH, cfg.DEMO.DISPLAY_HEIGHT)
        fps = cfg.DEMO.OUTPUT_FPS if cfg.DEMO.OUTPUT_FPS > 0 else source.fps
        limit = None if args.max_seconds is None else math.ceil(args.max_seconds * source.fps)
        known = [n for n in (source.num_frames, limit) if n is not None]
        still = None if args.still is None else round(args.still * source.fps)
        views = self.scorer.dataset.num_views
        print(
            f"demo: {source.name}: windows of {self.length} frames ({self.length / source.fps:.2f} s) every "
            f"{self.stride} frames, {views} view{'s' if views > 1 else ''} each",
            file=sys.stderr,
        )
        bar = tqdm(total=min(known) if known else None, desc="frames", unit="frame", file=sys.stderr, disable=None)
        try:
            with bar, source:
                result = run_demo(
                    source.frames(limit), self.scorer, self.outputs, self.names, self.length, self.stride, size, fps,
                    args.topk, bar, still,
                )  # fmt: skip
        except (VideoDecodeError, DemoError) as e:
            print(f"demo: {e} (nothing written)", file=sys.stderr)
            return 1
        except (OSError, av.FFmpegError) as e:
            print(f"demo: cannot write {self.outputs.video}: {e} (nothing written)", file=sys.stderr)
            return 1
        print(
            f"demo: {result.frames} frames, {len(result.windows)} windows in {result.seconds:.1f} s: "
            f"{result.frames_per_second:.1f} frames/s, {result.realtime_factor(source.fps):.2f}x real time",
            file=sys.stderr,
        )
        for path in result.written:
            print(path)
        return 0


def _stem(cfg: CfgNode) -> str:
    if cfg.DEMO.WEBCAM >= 0:
        return f"webcam{cfg.DEMO.WEBCAM}"
    return os.path.splitext(os.path.basename(cfg.DEMO.INPUT_VIDEO.rstrip("/")))[0] or "demo"


def _window_length(cfg: CfgNode, args: argparse.Namespace, span: Optional[int], fps: float) -> int:
    """Frames of a window: one clip's span (Kinetics), or ``--window`` seconds (default 4) where a
    clip spans a whole video (Something-Something)."""
    if span is not None and args.window is not None:
        raise DemoError(
            f"--window is for datasets whose clip spans a whole video; a {cfg.TEST.DATASET} clip spans {span} frames"
        )
    return span if span is not None else max(1, round((args.window or 4.0) * fps))


def _window_stride(cfg: CfgNode, args: argparse.Namespace, length: int, fps: float) -> int:
    """Frames between window starts: ``--stride`` seconds, else the window less DEMO.BUFFER_SIZE."""
    if args.stride is not None:
        stride = max(1, round(args.stride * fps))
        if stride > length:
            raise DemoError(
                f"--stride {args.stride} s is longer than the window ({length} frames, {length / fps:.2f} s)"
            )
        return stride
    buffer = cfg.DEMO.BUFFER_SIZE
    if not 0 <= buffer < length:
        raise cfg_error(cfg, "DEMO.BUFFER_SIZE", f"must be 0 to {length - 1}: the frames two windows of {length} share")
    return length - buffer


def _gradcam_request(cfg: CfgNode, args: argparse.Namespace, model: nn.Module, names: list[str]) -> GradCamRequest:
    """``--gradcam``'s layer (``--gradcam-layer``, else GRAD_CAM.LAYER_LIST's first, else the last
    stage), class (``--gradcam-class``, a name or an index; else each window's top class) and
    colour map (GRAD_CAM.COLORMAP), checked."""
    vis = cfg.TENSORBOARD.MODEL_VIS.GRAD_CAM
    if vis.COLORMAP not in COLORMAPS:
        raise cfg_error(cfg, "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP", f"must be one of {', '.join(COLORMAPS)}")
    name = args.gradcam_layer or (vis.LAYER_LIST[0] if vis.LAYER_LIST else DEFAULT_LAYER)
    try:
        (layer,) = grad_cam_layers(model, [name]).values()
    except ValueError as e:
        raise DemoError(f"--gradcam-layer: {e}") from None
    target = args.gradcam_class
    if target is not None:
        index = int(target) if target.isdigit() else names.index(target) if target in names else -1
        if not 0 <= index < len(names):
            raise DemoError(f"--gradcam-class {target!r} is not a class name or index of this model")
        target = index
    return GradCamRequest(layer, target, vis.COLORMAP)


if __name__ == "__main__":
    sys.exit(main())
