#!/usr/bin/env python3
"""Resize videos to a short side of 320 as H.264 MP4: ``python tools/resize_videos.py SRC DST``."""

import sys

from vov3d.cli.resize_videos import main

if __name__ == "__main__":
    sys.exit(main())
