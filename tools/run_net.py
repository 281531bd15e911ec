#!/usr/bin/env python3
"""Train and test video classifiers: ``python tools/run_net.py --cfg FILE [KEY VALUE ...]``."""

import sys

from vov3d.cli.run_net import main

if __name__ == "__main__":
    sys.exit(main())
