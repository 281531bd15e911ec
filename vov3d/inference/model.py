"""The trained network that predict and export run: the config's model with a checkpoint's
weights, in eval mode."""

from __future__ import annotations

import torch
import torch.nn as nn

from vov3d.checkpoint import apply_checkpoint, warn_if_config_differs
from vov3d.config import CfgNode
from vov3d.engine.run_folder import read_file_or_run
from vov3d.engine.runtime import for_inference, prepare_model


def load_trained_model(cfg: CfgNode, checkpoint: str, device: torch.device, trust: bool = False) -> nn.Module:
    """The network of ``cfg`` with the weights of ``checkpoint`` (ours, PySlowFast's or VoV3D's
    file, or a run folder: its newest complete checkpoint), in eval mode on ``device`` (BN folded
    when TEST.FOLD_BN). ``trust`` loads files that need more than the safe loader allows.

    Unlike fine-tuning, inference needs the trained classifier: a checkpoint with another class
    count is an error here instead of a re-initialised classifier giving random answers. A config
    that differs from the one stored in the file is named in a warning first.
    """
    path, state = read_file_or_run(checkpoint, trust)
    warn_if_config_differs(path, state, cfg)
    model = prepare_model(cfg, device, train=False)
    apply_checkpoint(state, path, model, reinit_classifier=False)
    return for_inference(model, cfg)
