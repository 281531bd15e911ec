"""``make_demo_dataset``: write the motion demo dataset (H.264 videos and Kinetics CSVs)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from vov3d.datasets.encode import write_video
from vov3d.datasets.motion_demo import CLASSES, DemoSpec, make_motion_dataset, render_sequence
from vov3d.utils.atomic import atomic_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_demo_dataset.py", description="Generate the motion demo dataset (Kinetics format)."
    )
    parser.add_argument("--out", default="demo_data/motion", help="output folder")
    parser.add_argument("--train-per-class", type=int, default=DemoSpec.train_per_class)
    parser.add_argument("--val-per-class", type=int, default=DemoSpec.val_per_class)
    parser.add_argument("--test-per-class", type=int, default=DemoSpec.test_per_class)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sequence",
        metavar="FILE.mp4",
        help="write instead one video of the 8 motions one after another (about 1 s each), for the demo tool",
    )
    args = parser.parse_args(argv)
    if args.sequence:
        spec = DemoSpec()
        frames = render_sequence(list(range(len(CLASSES))), args.seed, spec)
        with atomic_path(args.sequence, suffix=".mp4") as tmp:
            write_video(tmp, frames, spec.fps)
        print(f"wrote {len(frames)} frames ({len(frames) / spec.fps:.1f} s) of {', '.join(CLASSES)} to {args.sequence}")
        return 0
    spec = DemoSpec(args.train_per_class, args.val_per_class, args.test_per_class)
    make_motion_dataset(args.out, spec, args.seed)
    print(
        f"wrote {len(CLASSES)} classes x ({spec.train_per_class} train, {spec.val_per_class} val, "
        f"{spec.test_per_class} test) videos to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
