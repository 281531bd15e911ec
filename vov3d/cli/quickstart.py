"""The first five minutes: make the motion demo dataset if it is missing, train a small VoV3D on
the CPU with the normal engine, run the multi-view test, and say where everything went."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

from vov3d.cli.args import add_overrides, parse_with_overrides
from vov3d.config import ConfigError, config_root, load_config
from vov3d.datasets.motion_demo import make_motion_dataset
from vov3d.utils.run_layout import RunFolder

DEFAULT_CFG = config_root() / "quickstart" / "vov3d_motion.yaml"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="demo_data/motion", help="where the demo dataset is (made if missing)")
    parser.add_argument("--cfg", default=str(DEFAULT_CFG), help="config to train with (default: %(default)s)")
    add_overrides(parser)
    args = parse_with_overrides(parser, argv)

    started = time.perf_counter()
    if not os.path.isfile(os.path.join(args.data, "test.csv")):
        print(f"quickstart: generating the motion demo dataset in {args.data} ...", flush=True)
        make_motion_dataset(args.data)
    data = ["DATA.PATH_TO_DATA_DIR", args.data, "DATA.PATH_PREFIX", args.data]
    data += ["DATA.CLASS_NAMES", os.path.join(args.data, "classes.txt")]  # per-class table, predict
    try:
        cfg = load_config([args.cfg], data + list(args.opts))
    except ConfigError as e:
        print(f"quickstart: config error: {e}", file=sys.stderr)
        return 2
    from vov3d.engine.launch import run_jobs

    code = run_jobs(cfg)
    run = RunFolder(os.path.abspath(cfg.OUTPUT_DIR))
    finals = run.read_stats("test_final")
    if code or not finals:
        print(f"quickstart: the run failed (exit code {code}); see {run.log_path()}", file=sys.stderr)
        return code or 1
    stats = finals[-1]
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\nquickstart: top-1 {stats['top1_acc']:.1f}% (top-5 {stats['top5_acc']:.1f}%) on "
        f"{stats['num_videos']} held-out videos of 8 classes (chance 12.5%), in {minutes:.1f} min.\n"
        f"  log:         {run.log_path()} and {run.stats_path}\n"
        f"  TensorBoard: tensorboard --logdir {run.root}\n"
        f"  checkpoints: {run.checkpoints_dir}{os.sep}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
