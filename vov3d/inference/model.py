"""The trained network that predict and export run: the config's model with a checkpoint's
weights, in eval mode, and the class names the checkpoint carries."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn as nn

from vov3d.checkpoint import load_weights
from vov3d.config import CfgNode
from vov3d.engine.run_folder import checkpoint_class_names, read_file_or_run
from vov3d.engine.runtime import for_inference, prepare_model


class TrainedModel(NamedTuple):
    model: nn.Module
    class_names: Optional[list[str]]  # stored by training when it knew them, else None


def load_trained_model(cfg: CfgNode, checkpoint: str, device: torch.device, trust: bool = False) -> nn.Module:
    """``load_trained``'s network alone."""
    return load_trained(cfg, checkpoint, device, trust).model


def load_trained(cfg: CfgNode, checkpoint: str, device: torch.device, trust: bool = False) -> TrainedModel:
    """The network of ``cfg`` with the weights of ``checkpoint`` (ours, PySlowFast's or VoV3D's
    file, or a run folder: its newest complete checkpoint), in eval mode on ``device`` (BN folded
    when TEST.FOLD_BN). ``trust`` loads files that need more than the safe loader allows.

    Unlike fine-tuning, inference needs the trained classifier: a checkpoint with another class
    count is an error here instead of a re-initialised classifier giving random answers. A config
    that differs from the one stored in the file is named in a warning, or in the error when the
    weights do not fit.
    """
    path, state = read_file_or_run(checkpoint, trust)
    model = prepare_model(cfg, device, train=False)
    load_weights(path, state, model, cfg, trained_classifier=True)
    return TrainedModel(for_inference(model, cfg.TEST.FOLD_BN), checkpoint_class_names(state, cfg.MODEL.NUM_CLASSES))
