"""``benchmark``: how fast the models, the data path and training run on this machine.

    vov3d-benchmark model [--configs FILE ...] [--variants base,cl,...] [--device cuda]
    vov3d-benchmark data --make-inputs DIR | --cfg FILE [KEY VALUE ...]
    vov3d-benchmark keyframes --source VIDEO ... [--seconds 0.25,0.5,1,2] [--folder DIR] [KEY VALUE ...]
    vov3d-benchmark train --cfg FILE [KEY VALUE ...]
    vov3d-benchmark checkpoint [--configs FILE ...] [--folder DIR] [KEY VALUE ...]

Each prints the machine and the versions on one line, then a Markdown table, and writes them to ``--json``.
Benchmarks are not tests: figures depend on the machine and on what else runs on it (the load
average is recorded with them). BENCHMARKS.md holds the measured tables and the commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Optional, Sequence, TypeVar

import torch

from vov3d.benchmark import checkpoint, data, data_inputs, keyframes, model, train
from vov3d.benchmark.common import environment, environment_line, load_average
from vov3d.cli.args import add_overrides, parse_with_overrides

T = TypeVar("T")


def _settings(cls: type[T], args: argparse.Namespace) -> T:
    """A benchmark's settings dataclass filled from the parsed arguments of the same names."""
    return cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})


def run_model(args: argparse.Namespace) -> dict[str, Any]:
    return model.run(_settings(model.ModelSettings, args))


def run_data(args: argparse.Namespace) -> dict[str, Any]:
    """``--make-inputs DIR`` writes the inputs into DIR first (unless there) and reads them."""
    if args.make_inputs:
        encoding = data_inputs.ENCODINGS[args.encoding]
        data_inputs.make_inputs(args.make_inputs, args.videos, args.seconds, args.size, encoding, args.sources)
        args.inputs = args.make_inputs
    return data.run(_settings(data.DataSettings, args))


def run_keyframes(args: argparse.Namespace) -> dict[str, Any]:
    return keyframes.run(_settings(keyframes.KeyframeSettings, args))


def run_train(args: argparse.Namespace) -> dict[str, Any]:
    return train.run(_settings(train.TrainSettings, args))


def run_checkpoint(args: argparse.Namespace) -> dict[str, Any]:
    return checkpoint.run(_settings(checkpoint.CheckpointSettings, args))


def add_model_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("model", help="clips/s and peak memory of execution variants of the networks")
    p.add_argument("--configs", nargs="+", default=model.DEFAULT_MODELS, metavar="FILE", help="network configs")
    p.add_argument(
        "--variants", default=model.DEFAULT_VARIANTS, help="comma-separated variants (see vov3d.models.variants)"
    )
    p.add_argument("--modes", default="infer,train", help="infer, train or both")
    p.add_argument("--batch-size", type=int, default=None, help="clips per step (default: 2 on CPU, 16 on GPU)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    p.add_argument("--repeats", type=int, default=5, help="timed steps; the median is reported")
    p.set_defaults(func=run_model)


def _size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> (height, width)."""
    width, height = (int(v) for v in text.lower().split("x"))
    return height, width


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def add_data_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("data", help="clips/s of the data paths (decode, sample, transform)")
    p.add_argument("--cfg", default=data.KINETICS_CFG, help="Kinetics config (sampling, crops)")
    p.add_argument("--ssv1-cfg", default=data.SSV1_CFG, help="SSv1 config (frame folders)")
    add_overrides(p)  # of both configs
    p.add_argument("--inputs", default="benchmark_inputs", help="folder of inputs written by --make-inputs")
    p.add_argument("--make-inputs", metavar="DIR", default=None, help="write the inputs into DIR (unless there)")
    p.add_argument("--videos", type=int, default=8, help="videos listed (at most this many files)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the videos")
    p.add_argument(
        "--size", type=_size, default=(320, 426), metavar="WxH", help="video size (426x320; --source: short side)"
    )
    p.add_argument(
        "--encoding",
        choices=sorted(data_inputs.ENCODINGS),
        default="tool",
        help="how --make-inputs encodes: as tools/resize_videos.py (default), with x264's defaults, "
        "or not at all (original: the --source files copied as they are)",
    )
    p.add_argument(
        "--source", dest="sources", action="append", default=[], metavar="VIDEO", help="a real video (repeatable)"
    )
    p.add_argument("--clips", type=int, default=8, help="clips per timed repeat")
    p.add_argument("--batch-size", type=int, default=4, help="loader batch size")
    p.add_argument("--workers", type=_ints, default=[0, 2], help="comma-separated loader worker counts")
    p.add_argument(
        "--num-samples", type=_ints, default=[1], help="comma-separated AUG.NUM_SAMPLE values of the train rows"
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed repeats")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    p.set_defaults(func=run_data)


def add_keyframes_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "keyframes", help="file size and clips/s per core against tools/resize_videos.py's keyframe interval"
    )
    p.add_argument(
        "--source", dest="sources", nargs="+", action="extend", required=True, metavar="VIDEO", help="real videos"
    )
    p.add_argument("--seconds", type=_floats, default=[0.25, 0.5, 1.0, 2.0], help="comma-separated keyframe intervals")
    p.add_argument(
        "--folder", default="benchmark_inputs/keyframes", help="where the encodings are written (a rerun reads them)"
    )
    p.add_argument("--cfg", default=data.KINETICS_CFG, help="Kinetics config whose training clips are read")
    add_overrides(p)
    p.add_argument("--videos", type=int, default=8, help="videos listed (the sources in turn)")
    p.add_argument("--clips", type=int, default=8, help="clips per timed repeat")
    p.add_argument("--warmup", type=int, default=1, help="untimed repeats")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    p.set_defaults(func=run_keyframes, overrides_after="sources")


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help="end-to-end training iterations/s and the share of time waiting for data")
    p.add_argument("--cfg", required=True, help="training config")
    add_overrides(p)
    p.add_argument("--iters", type=int, default=20, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    p.set_defaults(func=run_train)


def add_checkpoint_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "checkpoint", help="per-iteration cost of the stop check and the time to write a mid-epoch checkpoint"
    )
    p.add_argument(
        "--configs", "--cfg", nargs="+", default=checkpoint.DEFAULT_CONFIGS, metavar="FILE", help="whose checkpoints"
    )
    add_overrides(p)  # of every config
    p.add_argument("--processes", type=_ints, default=[1, 2], help="1 (no process group) and/or 2 (gloo, on the CPU)")
    p.add_argument("--calls", type=int, default=2000, help="timed stop checks of each kind; the median is reported")
    p.add_argument("--warmup", type=int, default=100, help="untimed stop checks first")
    p.add_argument("--batch-size", type=int, default=8, help="clips per process in the stop check's batch")
    p.add_argument("--writes", type=int, default=5, help="timed checkpoint writes after an untimed one; the median")
    p.add_argument(
        "--folder",
        default=".",
        help="where the temporary OUTPUT_DIR is made (writes are fsynced: use the disk the runs write to)",
    )
    p.set_defaults(func=run_checkpoint, overrides_after="configs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="where to write the results (default: benchmark_<command>.json)")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (add_model_parser, add_data_parser, add_keyframes_parser, add_train_parser, add_checkpoint_parser):
        add(commands)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments and the config overrides; a subcommand whose list argument may be followed
    directly by KEY VALUE overrides names that argument (``overrides_after``)."""
    parser = build_parser()
    after = getattr(parser.parse_known_args(argv)[0], "overrides_after", None)
    args = parse_with_overrides(parser, argv, after=after)
    for samples in getattr(args, "num_samples", ()):  # before --make-inputs spends minutes encoding
        if samples < 1 or args.batch_size % samples:
            parser.error(f"--num-samples {samples}: must be 1 or more and divide --batch-size {args.batch_size}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmark: --device cuda but no GPU is available", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    env = environment(device)
    results = args.func(args)
    results = {
        "command": args.command,
        "argv": list(argv if argv is not None else sys.argv[1:]),
        "environment": env,
        "load_average_end": load_average(),
        **results,
    }
    path = args.json or f"benchmark_{args.command}.json"
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\n{environment_line(env)}\n\n{results['table']}\n\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
