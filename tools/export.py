#!/usr/bin/env python3
"""Export a model: ``python tools/export.py --cfg FILE --checkpoint FILE --format onnx --output FILE``."""

import sys

from vov3d.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
