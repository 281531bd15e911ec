"""The spatial transform: sizes, crops of every view, flip, normalisation, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vov3d.datasets.transforms import ClipTransform, short_side_size


def ramp(height: int, width: int, frames: int = 2) -> torch.Tensor:
    """uint8 T x H x W x 3: red is the column, green the row (mod 256), blue the frame."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    image = torch.stack([x % 256, y % 256, torch.zeros_like(x)], dim=-1)
    clip = image.expand(frames, height, width, 3).clone()
    clip[..., 2] = torch.arange(frames).view(frames, 1, 1) * 10
    return clip.to(torch.uint8)


def unnormalise(clip: torch.Tensor, t: ClipTransform) -> torch.Tensor:
    mean, std = torch.tensor(t.mean), torch.tensor(t.std)
    return (clip * std.view(3, 1, 1, 1) + mean.view(3, 1, 1, 1)) * 255


def test_short_side_size() -> None:
    assert short_side_size(240, 320, 256) == (256, 341)
    assert short_side_size(320, 240, 256) == (341, 256)
    assert short_side_size(100, 100, 64) == (64, 64)


@pytest.mark.parametrize("height,width", [(240, 320), (256, 340), (360, 640), (480, 270), (37, 101), (100, 100)])
@pytest.mark.parametrize("short", [182, 256, 320, 356, 37])
def test_short_side_size_is_the_originals(height: int, width: int, short: int) -> None:
    """The original: the long side is floor(long / short * size); a fitting frame is kept as it is."""
    if min(height, width) == short:
        expected = (height, width)
    elif width < height:
        expected = (math.floor(height / width * short), short)
    else:
        expected = (short, math.floor(width / height * short))
    assert short_side_size(height, width, short) == expected
    assert short_side_size(240, 320, 320) == (320, 426)  # 426.67 rounds down


@pytest.mark.parametrize("inv_uniform", [False, True])
def test_scale_jitter_draws_as_the_original(inv_uniform: bool) -> None:
    """size = round(uniform(min, max)), or round(1 / uniform(1 / max, 1 / min)) with
    INV_UNIFORM_SAMPLE; then a crop offset randint(0, free) (never the last one) per side."""
    t = ClipTransform(56, (64, 80), True, inv_uniform=inv_uniform)
    for seed in range(50):
        draw = np.random.default_rng(seed)
        size = int(round(1 / draw.uniform(1 / 80, 1 / 64))) if inv_uniform else int(round(draw.uniform(64, 80)))
        width = math.floor(120 / 90 * size)
        top, left = int(draw.integers(0, size - 56)), int(draw.integers(0, width - 56))
        assert t.plan(90, 120, rng=np.random.default_rng(seed))[:4] == (size, width, top, left)
    fixed = ClipTransform(56, (64, 64), True)
    lefts = {fixed.plan(64, 64, rng=np.random.default_rng(s)).left for s in range(300)}
    assert lefts == set(range(8))  # 8 pixels to spare: offsets 0..7, never 8
    assert ClipTransform(64, (64, 64), True).plan(64, 90, rng=np.random.default_rng(0)).top == 0


@pytest.mark.parametrize("inv_uniform", [False, True])
def test_train_output_size_and_seeded_determinism(inv_uniform: bool) -> None:
    t = ClipTransform(56, (64, 80), True, flip=True, inv_uniform=inv_uniform)
    frames = ramp(90, 120, frames=3)
    out = t(frames, rng=np.random.default_rng(3))
    assert out.shape == (3, 3, 56, 56) and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, t(frames, rng=np.random.default_rng(3)))
    plans = [t.plan(90, 120, rng=np.random.default_rng(s)) for s in range(200)]
    shorts = [p.height for p in plans]
    assert min(shorts) == 64 and max(shorts) == 80
    assert all(0 <= p.top <= p.height - 56 and 0 <= p.left <= p.width - 56 for p in plans)
    assert {p.flip for p in plans} == {True, False}
    if inv_uniform:  # uniform in 1/size favours small sizes
        assert np.mean(shorts) < 72


def test_train_crop_is_the_planned_window_and_flip_mirrors_it() -> None:
    t = ClipTransform(32, (48, 48), True, flip=True)
    frames = ramp(48, 64)  # no resize: the short side is already 48
    for seed in range(10):
        plan = t.plan(48, 64, rng=np.random.default_rng(seed))
        pixels = unnormalise(t.apply(frames, plan), t).round()
        red = pixels[0, 0, 0]
        expected = torch.arange(plan.left, plan.left + 32, dtype=torch.float32)
        assert torch.equal(red, expected.flip(0) if plan.flip else expected)
        assert pixels[1, 0, :, 0].tolist() == list(range(plan.top, plan.top + 32))
    assert not any(ClipTransform(32, (48, 48), True).plan(48, 64, rng=np.random.default_rng(s)).flip for s in range(20))


@pytest.mark.parametrize("height,width", [(48, 96), (96, 48)])
def test_three_test_crops_run_along_the_long_side(height: int, width: int) -> None:
    t = ClipTransform(48, (48, 48), False, num_crops=3)
    frames = ramp(height, width)
    crops = [unnormalise(t(frames, spatial_index=i), t).round() for i in range(3)]
    assert all(c.shape == (3, 2, 48, 48) for c in crops)
    channel = 0 if width > height else 1  # red counts columns, green rows
    starts = [c[channel, 0, 0, 0].item() for c in crops]
    assert starts == [0, 24, 48]
    assert torch.equal(crops[1], unnormalise(t(frames, spatial_index=1), t).round())
    with pytest.raises(ValueError, match="spatial_index"):
        t(frames, spatial_index=3)


def test_centre_offsets_round_up_as_the_original() -> None:
    t = ClipTransform(48, (48, 48), False, num_crops=3)
    frames = ramp(48, 97)  # 49 columns to spare: the original's centre is ceil(49 / 2) = 25
    assert [unnormalise(t(frames, spatial_index=i), t).round()[0, 0, 0, 0].item() for i in range(3)] == [0, 25, 49]
    assert ClipTransform(48, (48, 48), False).plan(97, 48).top == 25


def test_one_crop_scales_the_short_side_then_takes_the_centre() -> None:
    t = ClipTransform(32, (40, 40), False)
    plan = t.plan(60, 120)
    assert (plan.height, plan.width, plan.top, plan.left, plan.flip) == (40, 80, 4, 24, False)
    assert t(ramp(60, 120)).shape == (3, 2, 32, 32)


def test_uint8_resize_matches_float_resize() -> None:
    t = ClipTransform(40, (40, 40), False)
    frames = ramp(60, 90)
    plan = t.plan(60, 90)
    reference = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(plan.height, plan.width), mode="bilinear")
    reference = reference[..., plan.top : plan.top + 40, plan.left : plan.left + 40].permute(1, 0, 2, 3)
    assert (unnormalise(t(frames), t) - reference).abs().max() <= 1.01


def test_normalisation_and_bgr() -> None:
    frames = torch.zeros(1, 40, 40, 3, dtype=torch.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = 255, 51, 0
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.2, 0.1)
    rgb = ClipTransform(40, (40, 40), False, mean=mean, std=std)(frames)
    expected = [(1.0 - 0.5) / 0.25, (0.2 - 0.4) / 0.2, (0.0 - 0.3) / 0.1]
    assert torch.allclose(rgb[:, 0, 0, 0], torch.tensor(expected), atol=1e-5)
    bgr = ClipTransform(40, (40, 40), False, mean=mean, std=std, bgr=True)(frames)
    assert torch.allclose(bgr, rgb.flip(0))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="larger than the short side"):
        ClipTransform(64, (48, 60), True)
    with pytest.raises(ValueError, match="num_crops"):
        ClipTransform(32, (48, 48), False, num_crops=2)
    with pytest.raises(ValueError, match="needs an rng"):
        ClipTransform(32, (48, 60), True)(ramp(48, 48))
    with pytest.raises(ValueError, match="uint8"):
        ClipTransform(32, (48, 48), False)(ramp(48, 48).float())
