"""The building blocks against the rules of MODELS.md: widths, shapes, residual and concat rules,
initialisation, and the config errors of the registered networks."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from yacs.config import CfgNode as YacsCfgNode

from tests.models.conftest import model_cfg
from vov3d import models
from vov3d.config import ConfigError, load_config
from vov3d.models import build_model
from vov3d.models.d2plus1d import D2Plus1DUnit
from vov3d.models.head import Head, head_pool_size
from vov3d.models.layers import SE, round_width
from vov3d.models.stage import ResBlock, make_stage
from vov3d.models.stem import Stem
from vov3d.models.tosa import TOSATransform
from vov3d.models.vov3d import VoV3D
from vov3d.models.x3d import X3D, X3DBottleneck


@pytest.mark.parametrize(
    "width, rounded",
    [(24, 24), (12 * 2.0, 24), (96 * 2.0, 192), (3.375, 8), (10, 16), (13.5, 16), (20, 24), (27, 32)],
)
def test_round_width(width: float, rounded: int) -> None:
    # 10 -> 8 and 27 -> 24 would be more than 10% below: the rule adds 8.
    assert round_width(width) == rounded


@pytest.mark.parametrize("channels, hidden", [(54, 8), (108, 8), (216, 16), (432, 32), (160, 16), (320, 24)])
def test_se_width_and_gate(channels: int, hidden: int) -> None:
    se = SE(channels)
    assert (se.fc1.out_channels, se.fc2.in_channels, se.fc2.out_channels) == (hidden, hidden, channels)
    assert se.fc1.bias is not None and se.fc2.bias is not None
    x = torch.rand(2, channels, 2, 3, 3)
    out = se(x)
    assert out.shape == x.shape and (out <= x).all() and (out >= 0).all()  # a sigmoid gate


def test_stem_halves_space_keeps_time() -> None:
    stem = Stem(3, 24)
    assert stem.conv_xy.weight.shape == (24, 3, 1, 3, 3) and stem.conv.weight.shape == (24, 1, 5, 1, 1)
    assert stem(torch.randn(1, 3, 7, 32, 32)).shape == (1, 24, 7, 16, 16)


def test_d2plus1d_shapes_and_kernels() -> None:
    unit = D2Plus1DUnit(20, 40, stride=2, use_se=True)
    assert unit.b1.weight.shape == (40, 1, 1, 3, 3) and unit.b1.groups == 40
    assert unit.b2.weight.shape == (40, 1, 3, 1, 1) and unit.b2.groups == 40
    assert unit.c[0].out_channels == 20 and isinstance(unit.se, SE)
    assert unit(torch.randn(1, 20, 5, 16, 16)).shape == (1, 20, 5, 8, 8)
    assert not isinstance(D2Plus1DUnit(20, 40, 1, use_se=False).se, SE)


def _silence_transform(unit: D2Plus1DUnit) -> None:
    """Make the unit's transform output exactly 0, leaving only the residual and the ReLU."""
    nn.init.zeros_(unit.c[1].weight)
    nn.init.zeros_(unit.c[1].bias)


@pytest.mark.parametrize(
    "dim_in, stride, adds",
    [(20, 1, True), (16, 1, False), (20, 2, False)],  # adds only if dim_in == inner / 2 and stride 1
)
def test_d2plus1d_residual_rule_and_relu(dim_in: int, stride: int, adds: bool) -> None:
    unit = D2Plus1DUnit(dim_in, 40, stride, use_se=True).eval()
    _silence_transform(unit)
    x = torch.randn(2, dim_in, 3, 8, 8)
    with torch.no_grad():
        out = unit(x)
    assert unit.residual == adds
    expected = torch.relu(x) if adds else torch.zeros(2, 20, 3, 8 // stride, 8 // stride)
    torch.testing.assert_close(out, expected)  # the ReLU is applied with or without the addition


@pytest.mark.parametrize("stride", [1, 2])
def test_tosa_concatenation_width_and_chain(stride: int) -> None:
    w, out, inner, k = 24, 24, 40, 5
    block = TOSATransform(w, out, inner, stride, num_units=k)
    assert block.c.in_channels == k * inner // 2 + (w if stride == 1 else 0)
    assert [u.a[0].in_channels for u in block.layers] == [w] + [inner // 2] * (k - 1)
    assert [u.b1.stride for u in block.layers] == [(1, stride, stride)] + [(1, 1, 1)] * (k - 1)
    assert [isinstance(u.se, SE) for u in block.layers] == [True, False, True, False, True]
    x = torch.randn(1, w, 4, 8, 8)
    assert block(x).shape == (1, out, 4, 8 // stride, 8 // stride)


def test_tosa_concatenates_the_input_first_then_every_unit() -> None:
    block = TOSATransform(16, 32, 40, stride=1, num_units=3).eval()
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, tensor: torch.Tensor) -> None:  # hooks must return None
        seen[name] = tensor

    block.c.register_forward_hook(lambda m, args, out: keep("concat", args[0]))
    for j, unit in enumerate(block.layers):
        unit.register_forward_hook(lambda m, args, out, j=j: keep(f"unit{j}", out))
    x = torch.randn(1, 16, 2, 4, 4)
    with torch.no_grad():
        block(x)
    torch.testing.assert_close(seen["concat"], torch.cat([x, seen["unit0"], seen["unit1"], seen["unit2"]], 1))


@pytest.mark.parametrize("dim_in, dim_out, stride, shortcut", [(8, 8, 1, False), (8, 8, 2, True), (8, 16, 1, True)])
def test_res_block_shortcut_rule(dim_in: int, dim_out: int, stride: int, shortcut: bool) -> None:
    block = ResBlock(dim_in, dim_out, stride, X3DBottleneck(dim_in, dim_out, 16, stride, use_se=False)).eval()
    assert (block.branch1 is not None) == shortcut
    if shortcut:
        assert block.branch1.stride == (1, stride, stride) and block.branch1.kernel_size == (1, 1, 1)
    x = torch.randn(1, dim_in, 2, 8, 8)
    with torch.no_grad():
        skip = block.branch1_bn(block.branch1(x)) if shortcut else x
        torch.testing.assert_close(block(x), torch.relu(block.branch2(x) + skip))


def test_stage_strides_and_widens_only_in_its_first_block() -> None:
    def factory(dim_in: int, dim_out: int, stride: int, index: int) -> nn.Module:
        return X3DBottleneck(dim_in, dim_out, 12, stride, index % 2 == 0)

    stage = make_stage(8, 16, 3, 2, factory)
    assert list(dict(stage.named_children())) == ["pathway0_res0", "pathway0_res1", "pathway0_res2"]
    assert stage.pathway0_res0.branch1 is not None and stage.pathway0_res1.branch1 is None
    assert [isinstance(b.branch2.se, SE) for b in stage] == [True, False, True]
    assert stage(torch.randn(1, 8, 3, 8, 8)).shape == (1, 16, 3, 4, 4)


def test_x3d_m_widths_and_depths() -> None:
    model = build_model(model_cfg("X3D-M"))
    stages = [model.s2, model.s3, model.s4, model.s5]
    assert [len(s) for s in stages] == [3, 5, 11, 7]
    assert [s.pathway0_res0.branch2.c.out_channels for s in stages] == [24, 48, 96, 192]
    assert [s.pathway0_res0.branch2.a.out_channels for s in stages] == [54, 108, 216, 432]
    assert all(s.pathway0_res0.branch2.b.groups == s.pathway0_res0.branch2.b.in_channels for s in stages)
    assert model.s1.pathway0_stem.conv_xy.out_channels == 24
    assert (model.head.conv_5.in_channels, model.head.conv_5.out_channels) == (192, 432)
    assert [len(s) for s in (build_model(model_cfg("X3D-L")).s2, build_model(model_cfg("X3D-L")).s5)] == [
        5,
        15,
    ]


@pytest.mark.parametrize("size, c, depths", [("VoV3D-M", 40, [1, 2, 3, 2]), ("VoV3D-L", 48, [1, 2, 5, 3])])
def test_vov3d_widths_and_depths(size: str, c: int, depths: list) -> None:
    model = build_model(model_cfg(size))
    stages = [model.s2, model.s3, model.s4, model.s5]
    assert [len(s) for s in stages] == depths
    assert [s.pathway0_res0.branch2.c.out_channels for s in stages] == [c // 2, c, 2 * c, 4 * c]
    assert [s.pathway0_res0.branch2.layers[0].a[0].out_channels for s in stages] == [c, 2 * c, 4 * c, 8 * c]
    assert model.s1.pathway0_stem.conv_xy.out_channels == c // 2
    assert (model.head.conv_5.in_channels, model.head.conv_5.out_channels) == (4 * c, 8 * c)


@pytest.mark.parametrize("size", ["X3D-XS", "VoV3D-M"])
def test_time_is_never_strided(size: str) -> None:
    model = build_model(model_cfg(size)).eval()
    x = torch.randn(1, 3, 5, 64, 64)
    with torch.no_grad():
        for stage in (model.s1, model.s2, model.s3, model.s4, model.s5):
            x = stage(x)
    assert x.shape[2:] == (5, 2, 2)


def test_head_pool_size_and_fully_convolutional_test() -> None:
    assert head_pool_size(16, 224) == (16, 7, 7) and head_pool_size(16, 312) == (16, 10, 10)
    head = Head(8, 16, 32, num_classes=5, pool_size=(2, 2, 2)).eval()
    x = torch.randn(1, 8, 2, 3, 3)  # a larger test clip: 1x2x2 positions after pooling
    with torch.no_grad():
        probs = head(x)
        per_position = [head(x[..., i : i + 2, j : j + 2]) for i in (0, 1) for j in (0, 1)]
    torch.testing.assert_close(probs, torch.stack(per_position).mean(0))  # softmax, then average


def test_initialisation() -> None:
    torch.manual_seed(0)
    model = build_model(model_cfg("X3D-M", RESNET__ZERO_INIT_FINAL_BN=True))
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm3d):
            final = name.endswith("branch2.c_bn")
            assert (m.weight == (0.0 if final else 1.0)).all() and (m.bias == 0).all(), name
    proj = model.head.projection
    assert abs(proj.weight.std().item() - 0.01) < 0.001 and (proj.bias == 0).all()
    conv = model.s4.pathway0_res0.branch2.a  # kaiming normal, fan_out = 216 outputs
    assert abs(conv.weight.std().item() - (2 / 216) ** 0.5) < 0.01
    assert (model.s2.pathway0_res0.branch2.se.fc1.bias == 0).all()


def _model_classes() -> list[type[nn.Module]]:
    """Every module class defined in vov3d.models."""
    modules = [importlib.import_module(f"vov3d.models.{info.name}") for info in pkgutil.iter_modules(models.__path__)]
    return [
        cls
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__ == module.__name__
    ]


def test_blocks_do_not_read_the_cfg(monkeypatch: pytest.MonkeyPatch) -> None:
    classes = _model_classes()
    assert {X3D, VoV3D, Stem, Head, X3DBottleneck, TOSATransform, D2Plus1DUnit} <= set(classes)
    for cls in classes:  # the cfg is mapped to explicit arguments by from_cfg, never passed in
        params = inspect.signature(cls.__init__).parameters.values()
        taken = [p.name for p in params if p.name == "cfg" or "CfgNode" in str(p.annotation)]
        assert not taken, f"{cls.__qualname__}.__init__ takes {taken}"

    def read(node: YacsCfgNode, key: str) -> None:
        raise AssertionError(f"a block read the cfg's {key}")

    # Any key read from any cfg (a global one, get_cfg()'s defaults) fails while the networks are
    # built and run.
    monkeypatch.setattr(YacsCfgNode, "__getattr__", read)
    monkeypatch.setattr(YacsCfgNode, "__getitem__", read)
    x3d = X3D(width_factor=2.0, depth_factor=1.0, bottleneck_factor=2.25, num_classes=3, num_frames=2, crop_size=32)
    vov = VoV3D(depth=31, inner_ch=8, num_classes=3, num_frames=2, crop_size=32, dim_c5=16)
    for model in (x3d, vov):
        assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 3)
        for module in model.modules():  # nor does any keep one for later
            assert not any(isinstance(value, YacsCfgNode) for value in vars(module).values()), module


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("VOV3D.DEPTH", 19, "must be 31 (VoV3D-M) or 70 (VoV3D-L)"),
        ("VOV3D.TRANS_FUNC", "osa_transform", "t_osa_2plus1_transform"),
        ("VOV3D.INNER_CH", 41, "even"),
        ("VOV3D.NUM_CONV", 0, "1 or more"),
        ("VOV3D.OUT_MULTIPLIER", [0.5, 1, 2], "4 values"),
        ("BN.NORM_TYPE", "groupnorm", "batchnorm"),
        ("MODEL.NUM_CLASSES", 0, "1 or more"),
        ("MODEL.DROPOUT_RATE", 1.0, "[0, 1)"),
    ],
)
def test_vov3d_config_errors(key: str, value, words: str) -> None:
    cfg = model_cfg("VoV3D-M")
    section, name = key.split(".")
    cfg[section][name] = value
    with pytest.raises(ConfigError) as error:
        build_model(cfg)
    assert key in str(error.value) and words in str(error.value)


@pytest.mark.parametrize("key", ["WIDTH_FACTOR", "DEPTH_FACTOR", "BOTTLENECK_FACTOR", "DIM_C1"])
def test_x3d_config_errors(key: str) -> None:
    cfg = model_cfg("X3D-M")
    cfg.X3D[key] = 0
    with pytest.raises(ConfigError, match=f"X3D.{key} = 0 .*must be positive"):
        build_model(cfg)


def test_config_error_names_the_file(tmp_path: Path) -> None:
    """Unsupported values are found when the model is built, and the error names the file."""
    path = tmp_path / "bad.yaml"
    path.write_text("MODEL:\n  ARCH: vov3d\n  MODEL_NAME: VoV3D\nVOV3D:\n  DEPTH: 19\n")
    with pytest.raises(ConfigError, match=rf"VOV3D.DEPTH = 19 \(set in {path}\)"):
        build_model(load_config([str(path)]))


def test_x3d_variant_options() -> None:
    dense = build_model(model_cfg("X3D-XS", X3D__CHANNELWISE_3x3x3=False, X3D__BN_LIN5=True, X3D__SCALE_RES2=True))
    assert dense.s2.pathway0_res0.branch2.b.groups == 1
    assert isinstance(dense.head.lin_5_bn, nn.BatchNorm3d) and "head.lin_5_bn.weight" in dense.state_dict()
    assert dense.s2.pathway0_res0.branch2.c.out_channels == 48  # res2 base doubled: 24, times 2.0
    assert "head.lin_5_bn.weight" not in build_model(model_cfg("X3D-XS")).state_dict()


def test_vov3d_multipliers() -> None:
    model = build_model(model_cfg("VoV3D-M", VOV3D__INNER_MULTIPLIER=[2, 2, 4, 8], VOV3D__OUT_MULTIPLIER=[1, 1, 2, 4]))
    assert model.s2.pathway0_res0.branch2.layers[0].a[0].out_channels == 80
    assert model.s2.pathway0_res0.branch2.c.out_channels == 40
    assert model.s2.pathway0_res0.branch2.c.in_channels == 5 * 40  # five units of 80 / 2, stride 2
