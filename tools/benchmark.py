#!/usr/bin/env python3
"""Speed of the models, the data path and training: ``python tools/benchmark.py {model,data,train} ...``."""

import sys

from vov3d.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
