#!/usr/bin/env python3
"""Check the GPU paths of this checkout in one command (not run by CI): see vov3d/cli/gpu_check.py."""

import sys

from vov3d.cli.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
