#!/usr/bin/env python3
"""Kinetics-format CSVs and classes.txt from a folder per class: ``python tools/folder_to_csv.py ROOT``."""

import sys

from vov3d.cli.folder_to_csv import main

if __name__ == "__main__":
    sys.exit(main())
