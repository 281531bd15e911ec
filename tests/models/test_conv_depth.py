"""No 3-D convolution of any network runs a kernel deeper than its input's frames (issue 23:
oneDNN's bf16 weight gradient is wrong there), and the explicit padding that avoids it is exact."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.conftest import CONFIGS
from tests.models.conftest import SIZES
from vov3d.config import get_cfg
from vov3d.models import MODEL_REGISTRY, build_model
from vov3d.models.d2plus1d import DEPTHWISE_IMPLS, set_depthwise_impl
from vov3d.models.layers import DepthSafeConv3d, depth_safe_conv3d, pad_explicitly

# Every size of every network, and the quick configs that train with 4 frames.
CONFIG_FILES = {**SIZES, "vov3d_tiny": "quick/vov3d_tiny.yaml", "x3d_tiny": "quick/x3d_tiny.yaml"}
MAX_FRAMES = 8


@functools.cache
def network(name: str) -> nn.Module:
    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIGS / CONFIG_FILES[name]))
    cfg.DATA.TRAIN_CROP_SIZE = cfg.DATA.TEST_CROP_SIZE = 32
    cfg.LOG_MODEL_INFO = False
    torch.manual_seed(0)
    return build_model(cfg).eval()  # BN statistics need no batch; the convs run the same


@contextmanager
def conv3d_depths() -> Iterator[list[tuple[int, int]]]:
    """Records ``(input frames, kernel's temporal extent)`` of every 3-D conv run inside: modules
    and custom forwards alike call ``F.conv3d`` (which is ``torch.conv3d``), so both are patched."""
    calls: list[tuple[int, int]] = []
    real = torch.conv3d

    def spy(input: torch.Tensor, weight: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        dilation = kwargs.get("dilation", args[3] if len(args) > 3 else 1)
        dilation = dilation if isinstance(dilation, int) else dilation[0]
        calls.append((input.shape[2], dilation * (weight.shape[2] - 1) + 1))
        return real(input, weight, *args, **kwargs)

    with mock.patch.object(F, "conv3d", spy), mock.patch.object(torch, "conv3d", spy):
        yield calls


def conv_and_grads(
    conv: Callable[..., torch.Tensor], x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, **kwargs: Any
) -> list[torch.Tensor]:
    """The output and the gradients of input, weight and bias of a fixed loss."""
    x, weight, bias = (t.detach().requires_grad_() for t in (x, weight, bias))
    out = conv(x, weight, bias, **kwargs)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)).sum().backward()
    return [out, x.grad, weight.grad, bias.grad]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("groups", ["depthwise", 1, 2])
@pytest.mark.parametrize("spatial", [1, 3])
@pytest.mark.parametrize("depth", [3, 5, 7])
def test_padded_form_equals_the_plain_conv(
    depth: int, spatial: int, groups: int | str, channels_last: bool, dtype: torch.dtype
) -> None:
    """At every clip length up to the kernel depth: outputs and every gradient, the layout the plain conv's."""
    channels = 4
    groups = channels if groups == "depthwise" else groups
    generator = torch.Generator().manual_seed(depth * 10 + spatial)
    weight = torch.randn(channels, channels // groups, depth, spatial, spatial, generator=generator, dtype=dtype)
    bias = torch.randn(channels, generator=generator, dtype=dtype)
    kwargs = dict(stride=(1, 2, 2), padding=(depth // 2, spatial // 2, spatial // 2), groups=groups)
    for frames in range(1, depth + 1):
        x = torch.randn(2, channels, frames, 6, 5, generator=generator, dtype=dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        got = conv_and_grads(depth_safe_conv3d, x, weight, bias, dilation=(1, 1, 1), **kwargs)
        want = conv_and_grads(F.conv3d, x, weight, bias, **kwargs)
        for name, g, w in zip(("output", "input grad", "weight grad", "bias grad"), got, want):
            torch.testing.assert_close(g, w, msg=lambda m, at=f"{frames} frames, {name}": f"{at}: {m}")
        layout = [t.is_contiguous(memory_format=torch.channels_last_3d) for t in (got[0], want[0])]
        assert layout[0] == layout[1], f"{frames} frames: output channels_last {layout[0]}, plain conv's {layout[1]}"


def test_only_clips_shorter_than_the_kernel_are_padded() -> None:
    """A clip at least as deep as the kernel takes the one conv call as before; a shorter one is
    padded in time only, keeping channels_last, and the conv runs with no temporal padding."""
    conv = DepthSafeConv3d(4, 4, (5, 3, 3), padding=(2, 1, 1), groups=4)
    for frames, conv_depth, conv_padding in (
        (5, 5, (2, 1, 1)),
        (8, 8, (2, 1, 1)),
        (4, 8, (0, 1, 1)),
        (1, 5, (0, 1, 1)),
    ):
        x = torch.randn(1, 4, frames, 6, 6).contiguous(memory_format=torch.channels_last_3d)
        with mock.patch.object(F, "conv3d", wraps=F.conv3d) as spy:
            conv(x)
        (conv_input, *_, padding, _, _), _ = spy.call_args
        assert spy.call_count == 1 and conv_input.shape[2] == conv_depth and tuple(padding) == conv_padding
        assert conv_input.is_contiguous(memory_format=torch.channels_last_3d)
        assert conv_input is x or frames < 5


def test_pad_explicitly_pads_only_the_named_dims() -> None:
    x = torch.ones(1, 2, 3, 4)
    padded, left = pad_explicitly(x, (1, 2), dims=(1,))
    assert padded.shape == (1, 2, 3, 8) and left == (1, 0)
    assert padded[..., :2].abs().sum() == 0 and padded[..., -2:].abs().sum() == 0 and padded[..., 2:6].eq(1).all()


def test_depth_safe_conv_keeps_the_state_dict_of_conv3d() -> None:
    plain = nn.Conv3d(6, 6, (3, 1, 1), padding=(1, 0, 0), groups=6, bias=False)
    safe = DepthSafeConv3d(6, 6, (3, 1, 1), padding=(1, 0, 0), groups=6, bias=False)
    assert {k: v.shape for k, v in safe.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    safe.load_state_dict(plain.state_dict())
    x = torch.randn(1, 6, 2, 3, 3)
    torch.testing.assert_close(safe(x), plain(x))
    with pytest.raises(ValueError, match="zeros"):
        DepthSafeConv3d(6, 6, 3, padding=1, padding_mode="reflect")


def test_every_registered_model_is_checked() -> None:
    assert {type(network(name)).__name__ for name in CONFIG_FILES} == set(MODEL_REGISTRY.names())


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_no_conv_kernel_is_deeper_than_its_input(name: str) -> None:
    """Every formulation of the D(2+1)D convs, training (autograd records) and inference."""
    model = network(name)
    impls = list(DEPTHWISE_IMPLS) if type(model).__name__ == "VoV3D" else [None]
    too_deep = set()
    for frames in range(1, MAX_FRAMES + 1):
        clip = torch.randn(1, 3, frames, 32, 32)
        for impl in impls:
            if impl:
                set_depthwise_impl(model, impl)
            for grad in (True, False):
                with conv3d_depths() as calls, torch.set_grad_enabled(grad):
                    model(clip)
                assert any(kernel == 5 for _, kernel in calls), "the spy must see the stem's 5x1x1 conv"
                too_deep |= {(frames, impl, grad, depth, kernel) for depth, kernel in calls if depth < kernel}
    assert not too_deep, f"(frames, impl, training, input depth, kernel depth): {sorted(too_deep)[:8]}"
