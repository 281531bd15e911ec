"""Every execution variant computes the baseline's function with the baseline's weights:
outputs (and, for training, every gradient) match the plain NCDHW eager model, and the
state dicts are the same, so checkpoints load into any of them."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.conftest import CONFIGS
from tests.models.conftest import model_cfg
from vov3d.config import ConfigError, load_config
from vov3d.models import build_model, d2plus1d
from vov3d.models.d2plus1d import DEPTHWISE_IMPLS, D2Plus1DUnit, check_impl
from vov3d.models.fuse import conv_bn_pairs, fold_bn
from vov3d.models.variants import Variant

SIZES = ["X3D-M", "VoV3D-M"]
DEPTHWISE = [f"dw={impl}" for impl in DEPTHWISE_IMPLS]
FP32_VARIANTS = ["cl", "fold", "cl+fold", *DEPTHWISE, *(f"cl+{dw}" for dw in DEPTHWISE), "cl+fold+dw=frames2d"]
# Every variant that applies: BN folding is for inference, D(2+1)D formulations for VoV3D.
FP32_CASES = [
    (size, name, mode)
    for size in SIZES
    for name in FP32_VARIANTS
    for mode in ("infer", "train")
    if not (mode == "train" and "fold" in name) and not (size.startswith("X3D") and "dw=" in name)
]


def random_bn_statistics(model: nn.Module) -> nn.Module:
    """Running statistics and affine maps far from the initial ones, so folding has work to do."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
    return model


@functools.cache
def make_network(size: str) -> tuple[str, nn.Module, torch.Tensor]:
    """The network (random BN statistics, no dropout: its mask would differ between memory
    layouts) and a clip; tests run copies."""
    torch.manual_seed(0)
    model = random_bn_statistics(build_model(model_cfg(size, MODEL__DROPOUT_RATE=0.0)))
    clip = torch.randn(2, 3, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    return size, model, clip


@pytest.fixture(params=SIZES)
def network(request: pytest.FixtureRequest) -> tuple[str, nn.Module, torch.Tensor]:
    return make_network(request.param)


def run(variant: Variant, model: nn.Module, clip: torch.Tensor, train: bool) -> tuple[torch.Tensor, dict]:
    """The output and, when training, the gradient of every named parameter of a fresh copy."""
    model = copy.deepcopy(model)
    net = variant.prepare(model, train)
    with torch.set_grad_enabled(train), variant.autocast(clip.device):
        out = net(variant.input(clip))
    grads = {}
    if train:
        F.cross_entropy(out.float(), torch.tensor([1, 7])).backward()
        grads = {name: p.grad for name, p in model.named_parameters()}
    return out.detach(), grads


def assert_close(got: torch.Tensor, want: torch.Tensor, rel: float, what: str) -> None:
    error = float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))
    assert error <= rel, f"{what}: relative difference {error:.2e} > {rel:.0e}"


@pytest.mark.parametrize("size, name, mode", FP32_CASES)
def test_fp32_variant_matches_baseline(size: str, name: str, mode: str) -> None:
    _, model, clip = make_network(size)
    variant, train = Variant.parse(name), mode == "train"
    assert variant.skip_reason(model, train) is None
    # In float64 rounding is negligible even through ~100 train-mode BNs: any real difference shows.
    model, clip = copy.deepcopy(model).double(), clip.double()
    want, want_grads = run(Variant(), model, clip, train)
    got, got_grads = run(variant, model, clip, train)
    assert got.shape == want.shape
    assert_close(got, want, 1e-9, f"{size} {name} output")
    assert got_grads.keys() == want_grads.keys()
    for key, grad in want_grads.items():
        assert_close(got_grads[key], grad, 1e-7, f"{size} {name} gradient of {key}")


@pytest.mark.parametrize("name", ["bf16", "cl+bf16"])
def test_bf16_variant_is_close_to_baseline(network, name: str) -> None:
    """bf16 keeps 8 bits of mantissa: through ~60 train-mode BNs of a random network the logits
    move by tens of percent, but they must still point the same way as fp32's."""
    size, model, clip = network
    want, _ = run(Variant(), model, clip, train=True)
    got, _ = run(Variant.parse(name), model, clip, train=True)
    assert got.dtype == torch.bfloat16, f"{size} {name} did not run in bf16"
    want, got = want - want.mean(1, keepdim=True), got.float() - got.float().mean(1, keepdim=True)
    similarity = float(F.cosine_similarity(got.flatten(), want.flatten(), dim=0))
    assert similarity > 0.95, f"{size} {name}: cosine similarity of the logits {similarity:.3f}"


def test_compiled_variant_matches_baseline() -> None:
    torch.manual_seed(0)
    cfg = load_config([str(CONFIGS / "quick/vov3d_tiny.yaml")])
    model = random_bn_statistics(build_model(cfg))
    clip = torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 32, 32, generator=torch.Generator().manual_seed(1))
    want, _ = run(Variant(), model, clip, train=False)
    got, _ = run(Variant.parse("cl+compile"), model, clip, train=False)
    assert_close(got, want, 1e-4, "compiled output")


@pytest.mark.parametrize("size, name", [("X3D-M", "cl"), *(("VoV3D-M", n) for n in ("cl+dw=frames2d", "dw=fused"))])
def test_checkpoints_load_into_every_variant(size: str, name: str) -> None:
    """A variant keeps the parameter and buffer names and shapes: the baseline's state dict loads
    strictly into it (and back), giving the baseline's outputs."""
    _, model, clip = make_network(size)
    other = Variant.parse(name).prepare(copy.deepcopy(model), train=False)
    trained = copy.deepcopy(model)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state = trained.state_dict()
    assert {k: v.shape for k, v in other.state_dict().items()} == {k: v.shape for k, v in state.items()}
    other.load_state_dict(state, strict=True)
    with torch.no_grad():
        want = trained.eval()(clip)
        got = other(Variant.parse(name).input(clip))
    assert_close(got, want, 1e-4, f"{size} {name} after loading")
    model.load_state_dict(other.state_dict(), strict=True)


def test_fold_bn_removes_every_bn_and_needs_eval_mode(network) -> None:
    size, model, clip = network
    model = copy.deepcopy(model)
    with pytest.raises(ValueError, match="eval"):
        fold_bn(model.train())
    bns = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert len(list(conv_bn_pairs(model))) == bns  # every BN follows the conv it normalises
    fold_bn(model.eval())
    assert not any(isinstance(m, nn.BatchNorm3d) for m in model.modules())


def test_auto_uses_2d_kernels_only_while_autograd_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` picks the 2-D formulation for training (fast backward) and the 3-D convs for
    inference and tracing (fast forward, shape-free graphs)."""
    unit = D2Plus1DUnit(8, 16, 1, use_se=True)
    calls: list[str] = []
    for impl in ("separate", "frames2d"):
        original = getattr(d2plus1d, f"_{impl}")
        monkeypatch.setattr(d2plus1d, f"_{impl}", lambda *a, _o=original, _i=impl: calls.append(_i) or _o(*a))
    x = torch.randn(1, 8, 4, 6, 6)
    unit(x)
    with torch.no_grad():
        unit(x)
        torch.jit.trace(unit, x)
    assert calls[0] == "frames2d" and set(calls[1:]) == {"separate"}, calls  # trace runs it more than once
    calls.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        unit(x)
    with torch.autocast("cpu", dtype=torch.float16):
        unit(x)
    assert calls == ["frames2d", "frames2d"]  # in every precision (issue 23 found issue 15's NaN elsewhere)


def test_padded_small_frames_match_the_3d_convs() -> None:
    """Frames smaller than the 3x3 kernel are padded before the 2-D conv (a faster oneDNN path):
    outputs and gradients still equal those of the two ``Conv3d`` layers."""
    torch.manual_seed(0)
    for size, stride in ((1, 1), (2, 1), (2, 2), (3, 2), (4, 1)):
        unit = D2Plus1DUnit(8, 16, stride, use_se=False)
        for channels_last in (True, False):
            x = torch.randn(2, 8, 4, size, size)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            grads = []
            for impl in ("separate", "frames2d"):
                unit.impl = impl
                unit.zero_grad()
                xi = x.clone().requires_grad_()
                out = unit(xi)
                out.square().sum().backward()
                grads.append((out, xi.grad, unit.b1.weight.grad))
            for ref, got in zip(*grads):
                torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)


def test_unknown_depthwise_formulation_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="frames2d"):
        check_impl("fast")
    with pytest.raises(ValueError, match="unknown variant option 'turbo'"):
        Variant.parse("cl+turbo")
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text(f"_BASE_: {CONFIGS / 'quick/vov3d_tiny.yaml'}\nVOV3D:\n  DEPTHWISE_IMPL: fast\n")
    with pytest.raises(ConfigError, match="VOV3D.DEPTHWISE_IMPL"):
        build_model(load_config([str(cfg_file)]))


def test_skip_reasons() -> None:
    x3d, vov3d = make_network("X3D-M")[1], make_network("VoV3D-M")[1]
    assert "inference only" in Variant.parse("cl+fold").skip_reason(vov3d, train=True)
    assert "no D(2+1)D units" in Variant.parse("dw=fused").skip_reason(x3d, train=False)
    assert Variant.parse("cl+fold+dw=fused").skip_reason(vov3d, train=False) is None


def test_variant_names_round_trip() -> None:
    for name in ["base", "cl", "cl+fold+dw=frames2d", "cl+compile", "cl+bf16"]:
        assert Variant.parse(name).name == name
