"""Networks: X3D and VoV3D, registered by name in MODEL_REGISTRY."""

from .build import MODEL_REGISTRY, build_model

__all__ = ["MODEL_REGISTRY", "build_model"]
