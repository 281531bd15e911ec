"""The config tree (``get_cfg``), loading YAML files with ``_BASE_`` and overrides, and checks."""

from __future__ import annotations

from typing import Sequence

from iopath.common.file_io import g_pathmgr

from .defaults import get_cfg
from .node import CfgNode, ConfigError, cfg_error, key_source, merge_value, override_pairs
from .paths import config_root, default_output_dir
from .validation import validate_cfg

__all__ = [
    "CfgNode",
    "ConfigError",
    "cfg_error",
    "config_root",
    "get_cfg",
    "key_source",
    "load_config",
    "override_pairs",
    "save_config",
    "validate_cfg",
]


def load_config(cfg_files: Sequence[str], opts: Sequence[str] = ()) -> CfgNode:
    """Defaults, then each YAML file in order, then ``KEY VALUE`` overrides; validated, frozen.
    Where neither a file nor an override sets OUTPUT_DIR, the first file names it
    (``default_output_dir``)."""
    override_pairs(list(opts))  # an odd count is reported before any file is read
    cfg = get_cfg()
    for path in cfg_files:
        cfg.merge_from_file(path)
    cfg.merge_from_list(list(opts))
    if cfg_files and key_source(cfg, "OUTPUT_DIR") == "the defaults":
        merge_value(cfg, "OUTPUT_DIR", default_output_dir(cfg_files[0]), f"the default for {cfg_files[0]}")
    validate_cfg(cfg)
    cfg.freeze()
    return cfg


def save_config(cfg: CfgNode, path: str) -> None:
    """Write the effective config as YAML, loadable again with ``--cfg``."""
    with g_pathmgr.open(path, "w") as f:
        f.write(cfg.dump())
