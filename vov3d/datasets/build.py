"""The dataset registry, ``build_dataset`` and ``build_loader``."""

from __future__ import annotations

from vov3d.utils.registry import Registry

DATASET_REGISTRY = Registry("dataset", case_insensitive=True)
