"""``benchmark``: how fast the models, the data path and training run on this machine.

    vov3d-benchmark model [--configs FILE ...] [--variants base,cl,...] [--device cuda]
    vov3d-benchmark data --make-inputs DIR | --cfg FILE [KEY VALUE ...]
    vov3d-benchmark train --cfg FILE [KEY VALUE ...]

Each prints a Markdown table and writes it, with the machine and the versions, to ``--json``.
Benchmarks are not tests: figures depend on the machine and on what else runs on it (the load
average is recorded with them). BENCHMARKS.md holds the measured tables and the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

import torch

from vov3d.benchmark import data, model, train
from vov3d.benchmark.common import environment, load_average
from vov3d.cli.args import parse_with_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="where to write the results (default: benchmark_<command>.json)")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in (model, data, train):
        command.add_parser(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_with_overrides(build_parser(), argv)
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
    print(f"\n{results['table']}\n\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
