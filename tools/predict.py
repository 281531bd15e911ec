#!/usr/bin/env python3
"""Classify video files: ``python tools/predict.py --cfg FILE --checkpoint FILE VIDEO_OR_DIR ...``."""

import sys

from vov3d.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
