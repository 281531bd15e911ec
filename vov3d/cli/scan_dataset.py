"""``scan_dataset``: build the datasets of a config and list every video that cannot be read."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from vov3d.config import ConfigError, load_config
from vov3d.datasets import build_dataset
from vov3d.datasets.prepare import check_video, parallel
from vov3d.utils.cpus import usable_cpus

from .args import add_overrides, parse_with_overrides

_dataset = None  # the dataset being scanned; forked workers inherit it


def _scan_one(job: tuple[int, bool]) -> Optional[str]:
    return check_video(_dataset, *job)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan_dataset.py", description="List the unreadable videos of a dataset config.",
        epilog="Config overrides: KEY VALUE pairs after the config files or after --opts.",
    )
    parser.add_argument("--cfg", dest="cfg_files", nargs="+", required=True, metavar="FILE", help="config file(s)")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], choices=["train", "val", "test"])
    parser.add_argument("--full", action="store_true", help="decode every frame (slow; finds more damage)")
    parser.add_argument("--jobs", type=int, default=usable_cpus())
    parser.add_argument("--output", help="also write the unreadable ones here, one 'path: reason' per line")
    add_overrides(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    global _dataset
    args = parse_with_overrides(build_parser(), argv, after="cfg_files")
    try:
        cfg = load_config(args.cfg_files, args.opts)
    except ConfigError as e:
        print(f"scan_dataset: config error: {e}")
        return 2
    bad, seen = [], set()
    for split in args.splits:
        _dataset = build_dataset(cfg, split)
        todo = [(i, args.full) for i in range(_dataset.num_videos) if _dataset.paths[i] not in seen]
        seen.update(_dataset.paths)
        results = [r for r in parallel(_scan_one, todo, args.jobs) if r]
        print(f"{split}: {len(results)} of {len(todo)} videos unreadable")
        bad += sorted(results)
    for line in bad:
        print(line)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
