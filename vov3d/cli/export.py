"""``export``: write a trained model as TorchScript or ONNX, checked against PyTorch.

    python tools/export.py --cfg configs/Kinetics/x3d/X3D_M.yaml --checkpoint x3d_m.pyth \\
        --format onnx --output x3d_m.onnx [KEY VALUE ...]

The model takes clips of 1 x 3 x DATA.NUM_FRAMES x DATA.TEST_CROP_SIZE x DATA.TEST_CROP_SIZE
(``--frames`` and ``--crop`` change them; the batch size is free) and outputs class
probabilities. The exported file is run on random clips of batch 1 and 2 beside the PyTorch model;
the maximum difference is printed, and above ``--tolerance`` the command fails (exit code 1)
and writes nothing. Exit code 2: a wrong command line, config or checkpoint, or a missing package.
Installed as ``vov3d-export``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

import torch

from vov3d.checkpoint import CheckpointError
from vov3d.config import CfgNode, ConfigError, load_config
from vov3d.inference import load_trained_model
from vov3d.inference.export import CHECK_BATCHES, FORMATS, ONNX_OPSET, ExportError, export_and_check, require_onnx

from .args import add_overrides, parse_with_overrides
from .model_args import add_model_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="export.py",
        description="Export a trained X3D / VoV3D model to TorchScript or ONNX and check it against PyTorch.",
        epilog="Config overrides: KEY VALUE pairs at the end (e.g. MODEL.NUM_CLASSES 174) or after --opts.",
    )
    add_model_arguments(parser)
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx or torchscript")
    parser.add_argument("--output", required=True, metavar="FILE", help="the file to write (.onnx, .pt)")
    parser.add_argument("--frames", type=int, help="frames per clip (default DATA.NUM_FRAMES)")
    parser.add_argument("--crop", type=int, help="height and width of a clip (default DATA.TEST_CROP_SIZE)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest allowed difference of the probabilities to PyTorch's (default 1e-4)",
    )
    add_overrides(parser)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser()
    args = parse_with_overrides(parser, argv)
    for name in ("frames", "crop"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be 1 or more")
    if not args.tolerance >= 0:
        parser.error("--tolerance must be 0 or more")
    return args


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    return load_config([args.cfg], ["LOG_MODEL_INFO", "False", *args.opts])


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.format == "onnx":
            require_onnx()  # before the model is built: say what to install at once
        cfg = setup_cfg(args)
        model = load_trained_model(cfg, args.checkpoint, torch.device("cpu"), args.trust_checkpoint)
    except ConfigError as e:
        print(f"export: config error: {e}", file=sys.stderr)
        return 2
    except (CheckpointError, ExportError) as e:
        print(f"export: {e}", file=sys.stderr)
        return 2
    frames = args.frames or cfg.DATA.NUM_FRAMES
    crop = args.crop or cfg.DATA.TEST_CROP_SIZE
    shape = (1, 3, frames, crop, crop)
    what = f"ONNX (opset {ONNX_OPSET}, dynamic batch)" if args.format == "onnx" else "TorchScript (traced)"
    print(f"exporting {cfg.MODEL.MODEL_NAME} with {args.checkpoint} to {what}, input {'x'.join(map(str, shape))}")
    try:
        difference = export_and_check(model, shape, args.output, args.format, args.tolerance)
    except ExportError as e:
        print(f"export: {e}", file=sys.stderr)
        return 1
    print(
        f"max |{args.format} - pytorch| = {difference:.3g} over batches of {' and '.join(map(str, CHECK_BATCHES))} "
        f"(tolerance {args.tolerance:g}): ok, wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
