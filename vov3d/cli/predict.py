"""``predict``: classify video files with a trained model and print the top-k classes of each.

    python tools/predict.py --cfg configs/Kinetics/x3d/X3D_M.yaml --checkpoint x3d_m.pyth \\
        --labels kinetics400 --topk 5 my_videos/ clip.mp4 [KEY VALUE ...]

Class names come from ``--labels``, else from the checkpoint (training stores them whenever it
knows them: a folder dataset, DATA.CLASS_NAMES, ...), else classes are printed as indices.

Each video is classified from the test views of the config (``--views T S`` overrides
TEST.NUM_ENSEMBLE_VIEWS and TEST.NUM_SPATIAL_CROPS), combined as the multi-view test combines
them; with a Something-Something config a folder without video files is one video's JPEG frames.
``--json`` prints one JSON document and nothing else on stdout. Exit code 0 when every video was
classified, 1 when some could not be read (the others are still printed), 2 for a wrong command
line, config, checkpoint or label file. Installed as ``vov3d-predict``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any, Optional, Sequence

from tqdm import tqdm

from vov3d.checkpoint import CheckpointError
from vov3d.config import CfgNode, ConfigError, load_config
from vov3d.datasets import AnnotationError
from vov3d.datasets.class_names import read_class_names
from vov3d.inference import Prediction, find_videos, load_trained, predict_videos

from .args import add_overrides, parse_with_overrides
from .model_args import DeviceError, add_model_arguments, resolve_device


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Print the top-k classes of video files (or of every video in a folder).",
        epilog="Config overrides: KEY VALUE pairs after the videos (e.g. MODEL.NUM_CLASSES 174) or after --opts.",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--labels",
        metavar="FILE",
        help="class names: one per line, a JSON {name: id} (the SSv2 labels file), or the keyword "
        "kinetics400; when not given, the names stored in the checkpoint by training, else class indices",
    )
    parser.add_argument("--topk", type=int, default=5, help="classes printed per video (default 5)")
    parser.add_argument(
        "--views",
        type=int,
        nargs=2,
        metavar=("T", "S"),
        help="temporal views and spatial crops (1 or 3) per video (default: TEST.NUM_ENSEMBLE_VIEWS, "
        "TEST.NUM_SPATIAL_CROPS)",
    )
    parser.add_argument("--batch-size", type=int, help="clips per forward pass (default: all views of a video)")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=0, help="processes decoding the next videos (default 0)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of text")
    parser.add_argument(
        "videos",
        nargs="+",
        metavar="VIDEO_OR_DIR",
        help="video files and folders of videos (with an SS config, also folders of one video's JPEG frames)",
    )
    add_overrides(parser)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line; the first positional that looks like a config key (and is not a
    file) starts the trailing ``KEY VALUE`` overrides."""
    parser = build_parser()
    args = parse_with_overrides(parser, argv, after="videos")
    if args.topk < 1:
        parser.error("--topk must be 1 or more")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be 1 or more")
    return args


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    """The config with the overrides and ``--views``; model statistics are not logged (unless asked)."""
    opts = ["LOG_MODEL_INFO", "False"]
    if args.views is not None:
        opts += ["TEST.NUM_ENSEMBLE_VIEWS", str(args.views[0]), "TEST.NUM_SPATIAL_CROPS", str(args.views[1])]
    return load_config([args.cfg], opts + args.opts)


def _label(names: Optional[list[str]], index: int) -> Optional[str]:
    return names[index] if names is not None else None


def to_json(prediction: Prediction, topk: int, names: Optional[list[str]]) -> dict[str, Any]:
    """One entry of the ``--json`` list: {video, top: [{index, label, prob}], views} or {video, error}."""
    if prediction.error is not None:
        return {"video": prediction.video, "error": prediction.error}
    top = [{"index": i, "label": _label(names, i), "prob": p} for i, p in prediction.top(topk)]
    return {"video": prediction.video, "top": top, "views": prediction.views}


def to_text(prediction: Prediction, topk: int, names: Optional[list[str]]) -> str:
    """A block per video: its path and view count, then ``prob  class`` lines."""
    if prediction.error is not None:
        return f"{prediction.video}\n  error: {prediction.error}\n"
    lines = [f"{prediction.video}  ({prediction.views} view{'s' if prediction.views != 1 else ''})"]
    lines += [f"  {p:.4f}  {_label(names, i) or i}" for i, p in prediction.top(topk)]
    return "\n".join(lines) + "\n"


def _progress(items: Iterable, total: int) -> Iterable:
    """A bar on stderr for several files on an interactive terminal; stdout stays clean."""
    if total < 2 or not sys.stderr.isatty():
        return items
    return tqdm(items, total=total, desc="videos", file=sys.stderr, leave=False, dynamic_ncols=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = setup_cfg(args)
        names = None if args.labels is None else read_class_names(args.labels, cfg.MODEL.NUM_CLASSES)
        device = resolve_device(args.device)
        model, stored_names = load_trained(cfg, args.checkpoint, device, args.trust_checkpoint)
        names = names or stored_names
    except ConfigError as e:
        print(f"predict: config error: {e}", file=sys.stderr)
        return 2
    except (AnnotationError, CheckpointError, DeviceError) as e:
        print(f"predict: {e}", file=sys.stderr)
        return 2
    paths = find_videos(args.videos)
    predictions = predict_videos(model, cfg, paths, device, args.batch_size, args.workers)
    entries, failed = [], 0
    for prediction in _progress(predictions, len(paths)):
        failed += prediction.error is not None
        if args.json:
            entries.append(to_json(prediction, args.topk, names))
        else:
            tqdm.write(to_text(prediction, args.topk, names), file=sys.stdout)  # above the bar, if any
    if args.json:
        json.dump(entries, sys.stdout, indent=2)
        sys.stdout.write("\n")
    if failed:
        print(f"predict: {failed} of {len(paths)} videos could not be read", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
