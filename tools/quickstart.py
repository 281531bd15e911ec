#!/usr/bin/env python3
"""Generate the motion demo, train a small VoV3D on the CPU, and test it: ``python tools/quickstart.py``."""

import sys

from vov3d.cli.quickstart import main

if __name__ == "__main__":
    sys.exit(main())
