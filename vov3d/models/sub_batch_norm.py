"""Sub-batch BatchNorm (BN.NORM_TYPE sub_batchnorm): statistics over fixed-size sub-batches, as
PySlowFast's SubBatchNorm3d, for multigrid training whose per-process batch grows with the cycle.

The state dict is BatchNorm3d's (weight, bias, running_mean, running_var, num_batches_tracked), so
published checkpoints load strictly into a model built with it, and its checkpoints into a plain one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class SubBatchNorm3d(nn.BatchNorm3d):
    """BatchNorm3d whose training statistics are computed over ``num_splits`` sub-batches apart.

    Training: a batch of N clips is seen as N/k x (C*k) x T x H x W, so clip ``i`` belongs to
    split ``i % k`` (splits 0..k-1 take clips 0, k, 2k, ... / 1, k+1, ... as PySlowFast's view
    does), and each split is normalised by its own mean and variance, then scaled and shifted by
    the one shared ``weight`` and ``bias``: ``split_bn``, a BatchNorm3d over C*k channels (this
    layer's eps and momentum) given the weight and bias repeated per split, does this in one
    batch norm and keeps one set of running statistics per split; its buffers are not saved. A
    channels_last_3d batch costs a copy in and out (clips cannot merge into channels in that
    layout). Evaluation: exactly BatchNorm3d with ``running_mean`` / ``running_var``.

    ``aggregate_stats`` turns the splits' statistics into ``running_mean`` (the mean of their
    means) and ``running_var`` (the mean of their variances plus the variance of their means). The
    engine calls it, through ``aggregate_sub_batch_stats``, after precise BN (which recomputes the
    splits' statistics, as fvcore finds ``split_bn``), before every checkpoint and before every
    evaluation of a model that has been training. Loading a state dict copies the loaded
    statistics into every split, as PySlowFast does, so aggregating right after a load changes
    nothing but rounding (the last bit of some channels with more than 2 splits). A training
    checkpoint also holds the splits' own statistics (``split_statistics``), which a resumed run
    loads back (``load_split_statistics``), so it goes on exactly.

    Per process only: PySlowFast does not combine it with SyncBatchNorm, and
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` would turn it into a plain SyncBatchNorm; the
    engine converts models only for BN.NORM_TYPE sync_batchnorm.
    """

    def __init__(
        self,
        num_features: int,
        num_splits: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine)
        _check_num_splits(num_splits)
        self.num_splits = num_splits
        self.split_bn = SplitStatistics(num_features * num_splits, eps, momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        n, c = x.shape[:2]
        if n % self.num_splits:
            raise ValueError(
                f"sub-batch BN: a batch of {n} clips does not split into num_splits (BN.NUM_SPLITS) = "
                f"{self.num_splits} equal sub-batches; use a per-process batch size divisible by it"
            )
        # One batch norm over N/k x (C*k) channels, the affine map repeated per split: the kernel
        # BatchNorm3d runs (cuDNN on a GPU), with the weight in float32 under autocast. A view for a
        # contiguous batch; a channels_last_3d one is copied, and its layout restored below.
        k = self.num_splits
        weight, bias = (self.weight.repeat(k), self.bias.repeat(k)) if self.affine else (None, None)
        self.split_bn.repeated_affine = (weight, bias)
        try:
            y = self.split_bn(x.reshape(n // k, c * k, *x.shape[2:])).reshape(x.shape)
        finally:
            self.split_bn.repeated_affine = (None, None)
        if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d):
            y = y.contiguous(memory_format=torch.channels_last_3d)
        return y

    @torch.no_grad()
    def aggregate_stats(self) -> None:
        """``running_mean`` / ``running_var`` from the splits' running statistics: the mean of
        their means, and the mean of their variances plus the (population) variance of their means."""
        means = self.split_bn.running_mean.view(self.num_splits, -1)
        variances = self.split_bn.running_var.view(self.num_splits, -1)
        mean = means.mean(0)
        self.running_mean.copy_(mean)
        self.running_var.copy_(variances.mean(0) + (means - mean).square().mean(0))
        self.num_batches_tracked.copy_(self.split_bn.num_batches_tracked)

    @torch.no_grad()
    def set_num_splits(self, num_splits: int) -> None:
        """Split the batch into ``num_splits`` from now on (the long cycle's batch changed): the
        splits' statistics are aggregated and every new split starts from the aggregate, as
        PySlowFast's rebuilt model loaded from the last checkpoint does. A no-op for the same count."""
        if num_splits == self.num_splits:
            return
        _check_num_splits(num_splits)
        self.aggregate_stats()
        self.num_splits, self.split_bn.num_features = num_splits, self.num_features * num_splits
        # In place (``.data``): DistributedDataParallel keeps the buffer tensors it broadcasts.
        self.split_bn.running_mean.data = self.running_mean.repeat(num_splits)
        self.split_bn.running_var.data = self.running_var.repeat(num_splits)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        with torch.no_grad():  # every split starts from the loaded statistics
            self.split_bn.running_mean.copy_(self.running_mean.repeat(self.num_splits))
            self.split_bn.running_var.copy_(self.running_var.repeat(self.num_splits))
            self.split_bn.num_batches_tracked.copy_(self.num_batches_tracked)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_splits={self.num_splits}"


def _check_num_splits(num_splits: int) -> None:
    if isinstance(num_splits, bool) or not isinstance(num_splits, int) or num_splits < 1:
        raise ValueError(f"num_splits (BN.NUM_SPLITS) must be an integer of 1 or more, got {num_splits!r}")


def convert_sub_batch_norm(module: nn.Module, num_splits: int = 1) -> nn.Module:
    """``module`` with every plain BatchNorm3d replaced by a SubBatchNorm3d of ``num_splits``
    holding the same parameter tensors (an optimizer built before keeps them) and statistics, as
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` converts: for the long cycle, whose batch grows
    and shrinks within a run (``set_num_splits``)."""
    if type(module) is nn.BatchNorm3d and module.track_running_stats:
        sub = SubBatchNorm3d(module.num_features, num_splits, module.eps, module.momentum, module.affine)
        sub.to(module.running_mean.device)
        if module.affine:
            sub.weight, sub.bias = module.weight, module.bias
        sub.load_state_dict(module.state_dict())
        return sub.train(module.training)
    for name, child in module.named_children():
        converted = convert_sub_batch_norm(child, num_splits)
        if converted is not child:
            setattr(module, name, converted)
    return module


def set_sub_batch_splits(model: nn.Module, num_splits: int) -> int:
    """``set_num_splits`` of every SubBatchNorm3d in ``model`` (wrapped or not); returns how many."""
    layers = _sub_batch_layers(model)
    for layer in layers:
        layer.set_num_splits(num_splits)
    return len(layers)


def _sub_batch_layers(model: nn.Module) -> list[SubBatchNorm3d]:
    return [m for m in model.modules() if isinstance(m, SubBatchNorm3d)]


class SplitStatistics(nn.BatchNorm3d):
    """``split_bn``: a BatchNorm3d without an affine map whose statistics stay out of the state
    dict; SubBatchNorm3d fills them from its own when a state dict is loaded. Being a BatchNorm3d,
    precise BN (fvcore's ``update_bn_stats``) recomputes them as it does any BN layer's."""

    def __init__(self, num_features: int, eps: float, momentum: float | None) -> None:
        super().__init__(num_features, eps, momentum, affine=False)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, getattr(self, name), persistent=False)
        # The outer layer's weight and bias repeated per split, set around each call: an attribute,
        # not an argument, as precise BN's forward pre-hook passes the input tensor alone on.
        self.repeated_affine: tuple[Optional[torch.Tensor], Optional[torch.Tensor]] = (None, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training-mode batch norm of ``x`` with the affine map ``repeated_affine``, updating the
        splits' statistics as BatchNorm3d's forward does (momentum, or a cumulative average where
        it is None). Called as a module, so that precise BN's hooks see it."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        weight, bias = self.repeated_affine
        return F.batch_norm(x, self.running_mean, self.running_var, weight, bias, True, factor, self.eps)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, *_):
        # BatchNorm's own would add a num_batches_tracked entry (it expects one in state dicts
        # older than version 2) and then find it unexpected; nothing here is loaded.
        unexpected_keys.extend(key for key in state_dict if key.startswith(prefix))


def _split_buffers(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, buffer) of the splits' running statistics of every SubBatchNorm3d of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, SubBatchNorm3d):
            for buffer, tensor in module.split_bn.named_buffers(recurse=False):
                yield f"{name}.split_bn.{buffer}", tensor


def split_statistics(model: nn.Module) -> dict[str, torch.Tensor]:
    """The splits' running statistics of every SubBatchNorm3d of ``model`` (unwrapped), which the
    state dict leaves out, by buffer name (e.g. ``s2.b0.bn.split_bn.running_mean``); empty without
    sub-batch BN. A training checkpoint keeps them so that a resumed run continues them exactly."""
    return {name: tensor.detach().clone() for name, tensor in _split_buffers(model)}


@torch.no_grad()
def load_split_statistics(
    model: nn.Module, statistics: dict[str, torch.Tensor], adopt_splits: bool = False
) -> list[str]:
    """Copy ``split_statistics`` of a checkpoint into ``model`` (unwrapped); with
    ``adopt_splits`` each layer first takes the split count they were saved with (the long
    cycle's at that epoch). Returns the names of the model's split buffers it had no tensor of
    that shape for (another BN.NUM_SPLITS or norm type), which keep what the state dict gave them."""
    for name, module in model.named_modules():
        saved = statistics.get(f"{name}.split_bn.running_mean")
        if adopt_splits and isinstance(module, SubBatchNorm3d) and isinstance(saved, torch.Tensor):
            if saved.ndim == 1 and saved.numel() and saved.numel() % module.num_features == 0:
                module.set_num_splits(saved.numel() // module.num_features)
    unmatched = []
    for name, tensor in _split_buffers(model):
        saved = statistics.get(name)
        if isinstance(saved, torch.Tensor) and saved.shape == tensor.shape:
            tensor.copy_(saved)
        else:
            unmatched.append(name)
    return unmatched


def aggregate_sub_batch_stats(model: nn.Module) -> int:
    """``aggregate_stats`` of every SubBatchNorm3d in ``model`` (wrapped or not); returns how many.
    Does nothing to a model without sub-batch BN."""
    layers = _sub_batch_layers(model)
    for layer in layers:
        layer.aggregate_stats()
    return len(layers)
