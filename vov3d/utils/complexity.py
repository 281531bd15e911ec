"""Model size and cost: parameter count and fvcore GMACs of one clip, as the papers report them."""

from __future__ import annotations

import logging
import warnings
from typing import Optional

import torch
import torch.nn as nn

logger = logging.getLogger("vov3d.models")


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_gmacs(model: nn.Module, num_frames: int, crop_size: int) -> float:
    """fvcore's count for one (1, 3, T, crop, crop) clip in eval mode, in 10^9 multiply-adds.

    fvcore counts a multiply-add as one flop; ops it has no formula for (activations, pooling)
    count as zero, which is how the published figures were made.
    """
    with warnings.catch_warnings():  # fvcore's import uses APIs that torch marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    param = next(model.parameters())
    clip = torch.zeros(1, 3, num_frames, crop_size, crop_size, dtype=param.dtype, device=param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, clip)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return analysis.total() / 1e9
    finally:
        model.train(was_training)


def log_model_info(model: nn.Module, cfg) -> tuple[int, Optional[float]]:
    """Log one line with the parameter count and GMACs at the train crop; return both.

    GMACs are None (with a warning) when fvcore cannot trace the model: the figure is
    informative and must not stop a run.
    """
    params = count_parameters(model)
    frames, crop = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    try:
        gmacs: Optional[float] = count_gmacs(model, frames, crop)
    except Exception as e:  # any tracing failure only costs the figure
        logger.warning("could not count GMACs with fvcore (%s: %s)", type(e).__name__, e)
        gmacs = None
    cost = f"{gmacs:.3f} GMACs (fvcore)" if gmacs is not None else "GMACs unknown"
    logger.info(
        "%s: %s parameters, %s for one %dx%dx%d clip",
        type(model).__name__,
        f"{params:,}",
        cost,
        frames,
        crop,
        crop,
    )
    return params, gmacs
