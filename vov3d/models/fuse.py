"""Inference rewrites of a built network: BatchNorm folded into the convolution before it.

In evaluation mode a BN layer is a per-channel affine map, so it can be merged into the weights
and bias of the convolution that feeds it: the network computes the same function with one
memory pass fewer per BN (about 130 BN layers in VoV3D-M). Load checkpoints before folding:
folding removes the BN tensors from the state dict and adds conv biases.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def conv_bn_pairs(model: nn.Module) -> Iterator[tuple[nn.Module, str, str]]:
    """``(parent, conv name, bn name)`` for every BN registered right after a convolution.

    Every block of X3D and VoV3D (as in PySlowFast) registers a BN right after the conv whose
    output it normalises, and uses that conv's output nowhere else: in the D(2+1)D unit ``b_bn``
    follows ``b2``, in ``Sequential``s the BN is the next layer. The variant tests check that the
    folded network gives the same outputs.
    """
    for parent in model.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.modules.conv._ConvNd) and isinstance(bn, _BatchNorm):
                yield parent, conv_name, bn_name


@torch.no_grad()
def fold_conv_bn(conv: nn.modules.conv._ConvNd, bn: _BatchNorm) -> None:
    """Scale ``conv``'s output channels and give it the bias, so that ``conv`` alone equals
    ``bn(conv(x))`` with ``bn``'s running statistics."""
    if bn.running_var is None or bn.running_mean is None or not bn.affine:
        raise ValueError("only BN layers with running statistics and an affine map can be folded")
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.dim() - 1))))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def fold_bn(model: nn.Module) -> nn.Module:
    """Fold every BN into the convolution before it and replace the BN by ``nn.Identity``.

    For inference only: the model must be in evaluation mode (a folded BN no longer learns or
    normalises by batch statistics). Changes ``model`` in place and returns it.
    """
    if model.training:
        raise ValueError("fold_bn is for inference: call model.eval() first (training BN uses batch statistics)")
    for parent, conv_name, bn_name in list(conv_bn_pairs(model)):
        fold_conv_bn(getattr(parent, conv_name), getattr(parent, bn_name))
        setattr(parent, bn_name, nn.Identity())
    return model
