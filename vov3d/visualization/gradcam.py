"""Grad-CAM (Selvaraju et al., 2017) of X3D and VoV3D: where in a clip the evidence for a class lies.

captum's ``LayerGradCam`` does the work (it averages the gradients over every dimension after the
channels, so it takes our 5-D activations as they are); captum is an optional dependency
(``pip install 'vov3d[vis]'``). The score differentiated is the class's log-probability: the
network returns probabilities in eval mode, and PySlowFast's Grad-CAM differentiates the
probability itself, whose gradient is the same up to the factor 1/p per clip, so the normalised
maps are the same, but it does not vanish where the model is sure.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

# The layer whose Grad-CAM is shown unless one is named: the last stage, the finest semantics
# that still have a place in time and space (the head pools them away).
DEFAULT_LAYER = "s5"


_NO_CAPTUM = "Grad-CAM needs captum: pip install 'vov3d[vis]' (or pip install captum)"


class GradCamUnavailable(RuntimeError):
    """captum is not installed."""


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The module at ``name``: a module path with "/" or "." between parts (PySlowFast's
    LAYER_LIST writes "s5/pathway0_res2"), e.g. s5, s4/pathway0_res1, head/conv_5."""
    path = name.strip().replace("/", ".")
    try:
        return model.get_submodule(path)
    except AttributeError:
        top = ", ".join(child for child, _ in model.named_children())
        raise ValueError(f"the model has no layer {name!r}; layers are module paths under {top}") from None


def grad_cam_layers(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """The layers ``names`` of ``model`` checked for Grad-CAM before any work: captum installed
    (else GradCamUnavailable), every layer found and giving a N x C x T x H x W output (seen in a
    forward pass of a small clip); else ValueError."""
    if importlib.util.find_spec("captum") is None:
        raise GradCamUnavailable(_NO_CAPTUM)
    layers = {name: find_layer(model, name) for name in names}
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, out: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(out.shape))

        return hook

    hooks = [layer.register_forward_hook(record(name)) for name, layer in layers.items()]
    parameter = next(model.parameters())
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, 2, 64, 64, device=parameter.device))
    finally:
        for hook in hooks:
            hook.remove()
    for name, shape in shapes.items():
        if len(shape) != 5:
            raise ValueError(
                f"layer {name!r} gives a {len(shape)}-D output {shape}; Grad-CAM needs a N x C x T x H x W one"
            )
    return layers


def grad_cam(
    model: nn.Module, inputs: torch.Tensor, layer: nn.Module, targets: Optional[torch.Tensor] = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(heat, probs)``: Grad-CAM of ``layer`` for class ``targets`` (N,) of each clip of
    ``inputs`` (the network's N x 3 x T x H x W input; None: each clip's predicted class), as
    N x T x H x W in [0, 1] (each clip scaled from its lowest to its highest value, as PySlowFast's),
    upsampled to the input's frames; and the model's probabilities (N x classes)."""
    try:
        from captum.attr import LayerGradCam
    except ImportError:
        raise GradCamUnavailable(_NO_CAPTUM) from None
    model.eval()
    with torch.no_grad():
        probs = model(inputs).float()
    if targets is None:
        targets = probs.argmax(dim=1)
    with torch.enable_grad():
        cam = LayerGradCam(lambda x: model(x).float().clamp_min(1e-30).log(), layer)
        heat = cam.attribute(inputs, target=targets.tolist(), relu_attributions=True).detach()
    if heat.ndim != 5:
        raise ValueError(f"Grad-CAM needs a layer with a N x C x T x H x W output, got {tuple(heat.shape)}")
    heat = F.interpolate(heat.float(), size=inputs.shape[2:], mode="trilinear", align_corners=False)[:, 0]
    low = heat.flatten(1).min(dim=1).values.view(-1, 1, 1, 1)
    high = heat.flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
    return (heat - low) / (high - low).clamp_min(1e-12), probs
