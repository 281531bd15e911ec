"""SubBatchNorm3d (BN.NORM_TYPE sub_batchnorm): in training, plain BatchNorm3d on each split of
the batch apart (clip i in split i % k, PySlowFast's grouping) with one shared affine map; in
evaluation and in the state dict, exactly BatchNorm3d."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from tests.conftest import CONFIGS
from tests.models.test_variants import random_bn_statistics
from vov3d.config import ConfigError, load_config
from vov3d.engine.runtime import Execution
from vov3d.engine.solver import _is_bn_parameter
from vov3d.engine.train import update_precise_bn
from vov3d.models import (
    SubBatchNorm3d,
    aggregate_sub_batch_stats,
    build_model,
    convert_sub_batch_norm,
    load_split_statistics,
    split_statistics,
)
from vov3d.models.fuse import fold_bn

C = 4


def batch(n: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """N x C x 2 x 3 x 3 with a different mean and scale per clip, so the splits' statistics differ."""
    g = torch.Generator().manual_seed(seed)
    scales = 1 + torch.arange(n, dtype=dtype).view(n, 1, 1, 1, 1)
    offsets = torch.randn(n, C, 1, 1, 1, generator=g, dtype=dtype) * 2
    return torch.randn(n, C, 2, 3, 3, generator=g, dtype=dtype) * scales + offsets


def pair(k: int) -> tuple[SubBatchNorm3d, list[nn.BatchNorm3d]]:
    """A SubBatchNorm3d with a non-trivial affine map, and k plain BatchNorm3d with the same one."""
    sub = SubBatchNorm3d(C, num_splits=k).double()
    with torch.no_grad():
        sub.weight.copy_(torch.linspace(0.5, 2.0, C))
        sub.bias.copy_(torch.linspace(-1.0, 1.0, C))
    plain = [nn.BatchNorm3d(C).double() for _ in range(k)]
    for bn in plain:
        bn.load_state_dict(sub.state_dict())
    return sub, plain


@pytest.mark.parametrize("k", [1, 2, 3])
def test_training_equals_batchnorm_on_each_split(k: int) -> None:
    sub, plain = pair(k)
    x = batch(2 * k, seed=k).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    upstream = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(9))

    y = sub(x)
    y_ref = torch.empty_like(y)
    for split, bn in enumerate(plain):  # split s: clips s, s + k, s + 2k, ...
        y_ref[split::k] = bn(x_ref[split::k])
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)

    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sub.weight.grad, sum(bn.weight.grad for bn in plain), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sub.bias.grad, sum(bn.bias.grad for bn in plain), rtol=1e-10, atol=1e-12)
    if k > 1:  # the grouping matters: contiguous halves would give other outputs
        y_halves = torch.cat([bn(x_ref[i * 2 : (i + 1) * 2]) for i, bn in enumerate(plain)])
        assert not torch.allclose(y, y_halves)


def aggregated(means: torch.Tensor, variances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rule, split by split (rows): mean of the means; mean of the variances plus the
    population variance of the means."""
    mean = sum(means) / len(means)
    spread = sum((m - mean) ** 2 for m in means) / len(means)
    return mean, sum(variances) / len(variances) + spread


def test_aggregated_running_statistics_follow_the_rule() -> None:
    k = 3
    sub, plain = pair(k)
    for step in range(4):  # the splits' running averages, each as plain BN keeps it
        x = batch(2 * k, seed=10 + step)
        sub(x)
        for split, bn in enumerate(plain):
            bn(x[split::k])
    stale = sub.running_mean.clone()
    assert aggregate_sub_batch_stats(nn.Sequential(sub)) == 1
    means, variances = (torch.stack([getattr(bn, name) for bn in plain]) for name in ("running_mean", "running_var"))
    mean, var = aggregated(means, variances)
    assert not torch.allclose(stale, mean)  # training alone leaves running_mean as it was
    torch.testing.assert_close(sub.running_mean, mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sub.running_var, var, rtol=1e-12, atol=1e-12)
    assert int(sub.num_batches_tracked) == 4


def test_evaluation_is_batchnorm_with_the_same_buffers() -> None:
    sub, bn = SubBatchNorm3d(C, num_splits=2).double(), nn.BatchNorm3d(C).double()
    with torch.no_grad():
        bn.running_mean.copy_(torch.linspace(-1, 1, C))
        bn.running_var.copy_(torch.linspace(0.5, 3, C))
        bn.weight.copy_(torch.linspace(2, 1, C))
        bn.bias.copy_(torch.linspace(0, 1, C))
    sub.load_state_dict(bn.state_dict())
    x = batch(3, seed=1)  # eval takes any batch size
    assert torch.equal(sub.eval()(x), bn.eval()(x))


def test_state_dict_is_batchnorm3d_and_loading_fills_every_split() -> None:
    sub, bn = SubBatchNorm3d(C, num_splits=3), nn.BatchNorm3d(C)
    assert {n: t.shape for n, t in sub.state_dict().items()} == {n: t.shape for n, t in bn.state_dict().items()}
    with torch.no_grad():
        bn.running_mean.copy_(torch.arange(C) * 0.5)
        bn.running_var.copy_(torch.arange(C) + 2.0)
        bn.num_batches_tracked.fill_(7)
    sub.load_state_dict(bn.state_dict())  # strict
    assert torch.equal(sub.split_bn.running_mean.view(3, C), bn.running_mean.expand(3, C))
    assert torch.equal(sub.split_bn.running_var.view(3, C), bn.running_var.expand(3, C))
    sub.aggregate_stats()  # right after a load: the loaded statistics again
    torch.testing.assert_close(sub.running_mean, bn.running_mean)
    torch.testing.assert_close(sub.running_var, bn.running_var)
    assert int(sub.num_batches_tracked) == 7
    nn.BatchNorm3d(C).load_state_dict(sub.state_dict())  # and back, strictly


def test_a_batch_that_does_not_split_evenly_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"batch of 5 clips .*\(BN\.NUM_SPLITS\) = 2"):
        SubBatchNorm3d(C, num_splits=2)(torch.randn(5, C, 1, 2, 2))
    with pytest.raises(ValueError, match="BN.NUM_SPLITS"):
        SubBatchNorm3d(C, num_splits=0)


def test_channels_last_and_bf16_autocast() -> None:
    sub = SubBatchNorm3d(C, num_splits=2)
    x = batch(4, seed=2, dtype=torch.float32)
    want = sub(x)
    got = sub(x.contiguous(memory_format=torch.channels_last_3d))
    assert got.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = sub(x.bfloat16())
        plain = nn.BatchNorm3d(C)(x.bfloat16())
    assert low.dtype == plain.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), want, rtol=0.05, atol=0.05)


def test_precise_bn_gives_each_split_its_statistics_then_aggregates() -> None:
    """update_precise_bn (fvcore) recomputes split_bn's statistics over the batches; the model then
    holds the rule's aggregate of each split's population mean and (biased) variance."""
    k, execution = 2, Execution(torch.device("cpu"))
    model = nn.Sequential(SubBatchNorm3d(3, num_splits=k))
    g = torch.Generator().manual_seed(4)
    loader = [(torch.randint(0, 256, (4, 2, 3, 3, 3), dtype=torch.uint8, generator=g), None) for _ in range(3)]
    update_precise_bn(model, loader, 3, execution)
    splits = [torch.cat([execution.to_input(clips)[s::k] for clips, _ in loader]).double() for s in range(k)]
    means = torch.stack([x.mean((0, 2, 3, 4)) for x in splits])
    variances = torch.stack([x.var((0, 2, 3, 4), unbiased=False) for x in splits])
    mean, var = aggregated(means, variances)
    torch.testing.assert_close(model[0].running_mean.double(), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[0].running_var.double(), var, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("network", ["x3d_tiny", "vov3d_tiny"])
def test_a_network_with_sub_batch_norm_loads_plain_weights_and_back(network: str) -> None:
    path = str(CONFIGS / f"quick/{network}.yaml")
    torch.manual_seed(0)
    plain = random_bn_statistics(build_model(load_config([path]))).double()
    sub = build_model(load_config([path], ["BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", "2"])).double()
    layers = [m for m in sub.modules() if isinstance(m, SubBatchNorm3d)]
    assert layers and all(m.num_splits == 2 for m in layers)
    assert len(layers) == sum(type(m) is nn.BatchNorm3d for m in plain.modules())

    sub.load_state_dict(plain.state_dict())  # strict
    x = torch.randn(4, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(sub.eval()(x), plain.eval()(x))

    # Training: clips 0 and 2 form one split, and nothing else mixes clips in these networks.
    torch.testing.assert_close(sub.train()(x)[0::2], plain.train()(x[0::2]), rtol=1e-9, atol=1e-10)
    aggregate_sub_batch_stats(sub)
    plain.load_state_dict(sub.state_dict())  # strict, the other way
    assert torch.equal(sub.eval()(x), plain.eval()(x))

    # The test's BN folding (TEST.FOLD_BN) and BN.WEIGHT_DECAY_GROUPS type see it as a BatchNorm.
    assert torch.equal(fold_bn(copy.deepcopy(sub))(x), fold_bn(copy.deepcopy(plain))(x))
    in_bn_group = [name for name, p in sub.named_parameters() if _is_bn_parameter(sub, "type")[id(p)]]
    assert in_bn_group == [name for name, p in plain.named_parameters() if _is_bn_parameter(plain, "type")[id(p)]]
    assert len(in_bn_group) == 2 * len(layers)


def test_num_splits_is_checked_where_the_model_is_built() -> None:
    path = str(CONFIGS / "quick/x3d_tiny.yaml")
    with pytest.raises(ConfigError, match="BN.NUM_SPLITS"):
        build_model(load_config([path], ["BN.NORM_TYPE", "sub_batchnorm", "BN.NUM_SPLITS", "0"]))


def test_split_statistics_travel_outside_the_state_dict() -> None:
    """``split_statistics`` gives the splits' own running statistics (which the state dict leaves
    out, and a load replaces by the aggregate); ``load_split_statistics`` puts them back, and names
    the buffers a checkpoint of another split count has nothing for."""
    torch.manual_seed(0)
    model = nn.Sequential(SubBatchNorm3d(3, num_splits=2)).train()
    model(torch.randn(4, 3, 2, 3, 3) + torch.arange(4.0).view(4, 1, 1, 1, 1))  # splits see different means
    saved, state = split_statistics(model), model.state_dict()
    assert set(saved) == {f"0.split_bn.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")}
    fresh = nn.Sequential(SubBatchNorm3d(3, num_splits=2))
    fresh.load_state_dict(state)
    assert not torch.equal(fresh[0].split_bn.running_mean, model[0].split_bn.running_mean)  # the aggregate, repeated
    assert load_split_statistics(fresh, saved) == []
    for name, tensor in split_statistics(fresh).items():
        assert torch.equal(tensor, saved[name]), name
    other = nn.Sequential(SubBatchNorm3d(3, num_splits=3))
    assert load_split_statistics(other, saved) == ["0.split_bn.running_mean", "0.split_bn.running_var"]


def test_converting_a_network_keeps_its_parameters_and_outputs() -> None:
    """The long cycle converts the built network's BatchNorm3d layers: the same parameter tensors
    (the optimizer built after holds them), the same statistics, the same outputs."""
    model = build_model(load_config([str(CONFIGS / "quick" / "vov3d_tiny.yaml")]))
    random_bn_statistics(model)
    params = {name: p for name, p in model.named_parameters()}
    state = copy.deepcopy(model.state_dict())
    x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = model.eval()(x)
    converted = convert_sub_batch_norm(model, 2)
    layers = [m for m in converted.modules() if isinstance(m, SubBatchNorm3d)]
    assert layers and not [m for m in converted.modules() if type(m) is nn.BatchNorm3d]
    assert all(layer.num_splits == 2 and not layer.training for layer in layers)
    assert all(p is params[name] for name, p in converted.named_parameters())
    assert converted.state_dict().keys() == state.keys()
    assert all(torch.equal(converted.state_dict()[key], tensor) for key, tensor in state.items())
    torch.testing.assert_close(converted(x), expected, rtol=0, atol=0)


def test_set_num_splits_starts_every_new_split_from_the_aggregate() -> None:
    sub, _ = pair(2)
    sub.train()(batch(4, seed=1))
    sub.aggregate_stats()
    mean, var = sub.running_mean.clone(), sub.running_var.clone()
    sub(batch(4, seed=2))  # the splits move on; the aggregate is taken again at the change
    sub.set_num_splits(3)
    assert sub.num_splits == 3 and sub.split_bn.running_mean.shape == (3 * C,)
    assert not torch.equal(sub.running_mean, mean)  # re-aggregated from the splits, not the stale aggregate
    torch.testing.assert_close(sub.split_bn.running_mean, sub.running_mean.repeat(3), rtol=0, atol=0)
    torch.testing.assert_close(sub.split_bn.running_var, sub.running_var.repeat(3), rtol=0, atol=0)
    assert not torch.equal(sub.running_var, var)
    sub(batch(6, seed=3))  # 3 splits of 2 clips
    before = sub.split_bn.running_mean.clone()
    sub.set_num_splits(3)  # the same count changes nothing
    assert torch.equal(sub.split_bn.running_mean, before)
    with pytest.raises(ValueError, match="must be an integer of 1 or more"):
        sub.set_num_splits(0)


def test_a_resumed_long_cycle_takes_the_split_count_it_was_saved_with() -> None:
    sub, _ = pair(4)
    sub.train()(batch(8, seed=4))
    saved = split_statistics(nn.Sequential(sub))
    other = nn.Sequential(SubBatchNorm3d(C, num_splits=1).double())
    assert load_split_statistics(other, saved) == [f"0.split_bn.{b}" for b in ("running_mean", "running_var")]
    assert other[0].num_splits == 1  # a fixed BN.NUM_SPLITS keeps its count
    assert load_split_statistics(other, saved, adopt_splits=True) == []
    assert other[0].num_splits == 4 and torch.equal(other[0].split_bn.running_mean, sub.split_bn.running_mean)


def test_precise_bn_of_a_network_with_one_split_equals_plain_batch_norm() -> None:
    """Precise BN runs the network forward with fvcore's hooks on every BN layer, split_bn included,
    whose pre-hook passes the input tensor alone on: the layers after a sub-batch BN must still
    see its affine map (they did not, and their statistics were wrong, before the affine map moved
    out of split_bn's arguments)."""
    torch.manual_seed(0)
    plain = build_model(load_config([str(CONFIGS / "quick" / "vov3d_tiny.yaml")]))
    sub = convert_sub_batch_norm(copy.deepcopy(plain), 1)
    random_bn_statistics(plain)  # a non-trivial affine map in every BN
    sub.load_state_dict(plain.state_dict())
    execution = Execution.from_cfg(load_config([]), torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(0, 255, (4, 4, 32, 32, 3), dtype=torch.uint8, generator=g),) for _ in range(2)]
    update_precise_bn(plain, batches, 2, execution)
    update_precise_bn(sub, batches, 2, execution)
    expected, got = plain.state_dict(), sub.state_dict()
    differing = [key for key in expected if not torch.equal(expected[key], got[key])]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:3]}"
