"""vov3d: efficient video classification with X3D and VoV3D."""

__version__ = "0.1.5"
