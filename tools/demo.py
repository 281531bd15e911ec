#!/usr/bin/env python3
"""Label a video over time with a trained model: ``python tools/demo.py --cfg FILE --checkpoint FILE VIDEO``."""

import sys

from vov3d.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
