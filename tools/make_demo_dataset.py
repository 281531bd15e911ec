#!/usr/bin/env python3
"""Write the motion demo dataset (H.264 videos + Kinetics CSVs): ``python tools/make_demo_dataset.py --out DIR``."""

import sys

from vov3d.cli.make_demo_dataset import main

if __name__ == "__main__":
    sys.exit(main())
