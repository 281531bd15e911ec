"""Datasets: Kinetics (video files), Something-Something V1 / V2 (frame folders or webm)."""

from .build import DATASET_REGISTRY

__all__ = ["DATASET_REGISTRY"]
