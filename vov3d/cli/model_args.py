"""The arguments every command that loads a trained model takes (``--cfg``, ``--checkpoint``,
``--trust-checkpoint``) and the ``--device`` choice."""

from __future__ import annotations

import argparse

import torch


class DeviceError(ValueError):
    """The device asked for does not exist here."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cfg``, ``--checkpoint`` and ``--trust-checkpoint``."""
    parser.add_argument("--cfg", required=True, metavar="FILE", help="the YAML config the model was trained with")
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="FILE_OR_DIR",
        help="weights: a vov3d checkpoint, a published PySlowFast (.pyth) / VoV3D (.pth) one, or a run's "
        "OUTPUT_DIR for its newest complete checkpoint",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="load a file whose pickle needs more than tensors and NumPy values (it can run code): only for "
        "files whose source you trust",
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name} asked for, but torch sees no CUDA GPU; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N")
    return device
