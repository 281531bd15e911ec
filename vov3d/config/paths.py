"""Where configs live and where a run writes by default; the config layer's only file-system rules."""

from __future__ import annotations

import os
from pathlib import Path

_CONFIGS = "configs"


def default_output_dir(cfg_file: str) -> str:
    """``output/<path under configs/ without .yaml>`` for a file in a ``configs`` folder (the
    repository's or the installed package's), else ``output/<file stem>``: every config gets its
    own folder, so auto-resume never picks up another config's checkpoint."""
    parts = Path(os.path.abspath(cfg_file)).with_suffix("").parts
    folders = parts[:-1]
    if _CONFIGS in folders:
        start = len(folders) - folders[::-1].index(_CONFIGS)
        return os.path.join("output", *parts[start:])
    return os.path.join("output", parts[-1])


def config_root() -> Path:
    """The shipped configs: package data of an installed vov3d (``vov3d/configs``), else the
    ``configs`` folder of the source checkout that holds this package."""
    package = Path(__file__).resolve().parents[1]
    installed = package / _CONFIGS
    return installed if installed.is_dir() else package.parent / _CONFIGS
