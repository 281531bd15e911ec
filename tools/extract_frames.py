#!/usr/bin/env python3
"""Extract SSv2 frames at 30 fps and write the frame lists:
``python tools/extract_frames.py --videos DIR --annotations DIR --frames DIR``."""

import sys

from vov3d.cli.extract_frames import main

if __name__ == "__main__":
    sys.exit(main())
