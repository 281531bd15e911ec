#!/usr/bin/env python3
"""Speed of the models, the data path, video keyframe intervals, training and checkpoints:
``python tools/benchmark.py {model,data,keyframes,train,checkpoint} ...``."""

import sys

from vov3d.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
