#!/usr/bin/env python3
"""List the unreadable videos of a dataset config:
``python tools/scan_dataset.py --cfg FILE [--opts KEY VALUE ...]``."""

import sys

from vov3d.cli.scan_dataset import main

if __name__ == "__main__":
    sys.exit(main())
