#!/usr/bin/env python3
"""Write the Something-Something V1 frame lists from its frame folders and CSV files:
``python tools/make_ssv1_lists.py --frames DIR --annotations DIR``."""

import sys

from vov3d.cli.make_ssv1_lists import main

if __name__ == "__main__":
    sys.exit(main())
