"""The spatial transform: sizes, crops of every view, flip, the region resize, normalisation on
the network's side (to the bit what the float path of 0.1.2 gave), determinism."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Optional

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vov3d.datasets.rand_augment import ClipRandAugment
from vov3d.datasets.transforms import ClipTransform, CropPlan, Normalize, resize_crop, short_side_size


def ramp(height: int, width: int, frames: int = 2) -> torch.Tensor:
    """uint8 T x H x W x 3: red is the column, green the row (mod 256), blue the frame."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    image = torch.stack([x % 256, y % 256, torch.zeros_like(x)], dim=-1)
    clip = image.expand(frames, height, width, 3).clone()
    clip[..., 2] = torch.arange(frames).view(frames, 1, 1) * 10
    return clip.to(torch.uint8)


def channels_first(clip: torch.Tensor) -> torch.Tensor:
    """uint8 T x H x W x 3 -> float 3 x T x H x W, to read pixels as channel, frame, row, column."""
    return clip.permute(3, 0, 1, 2).float()


def float_path(
    frames: torch.Tensor, plan: CropPlan, crop: int, norm: Normalize, augment=None, generator=None
) -> torch.Tensor:
    """The loader's output of vov3d 0.1.2, kept here as the reference: resize the whole uint8
    clip, crop, flip, augment, then the float 3 x T x crop x crop clip, normalised in the worker."""
    clip = frames.permute(0, 3, 1, 2)
    if clip.shape[-2:] != (plan.height, plan.width):
        clip = F.interpolate(clip, size=(plan.height, plan.width), mode="bilinear", align_corners=False)
    clip = clip[..., plan.top : plan.top + crop, plan.left : plan.left + crop]
    if plan.flip:
        clip = clip.flip(-1)
    if augment is not None:
        clip = augment(clip, generator)
    mean, std = np.asarray(norm.mean), np.asarray(norm.std)
    if norm.bgr:
        clip, mean, std = clip.flip(1), mean[::-1], std[::-1]
    out = torch.empty((3,) + (clip.shape[0],) + clip.shape[2:], dtype=torch.float32)
    out.copy_(clip.transpose(0, 1))
    scale = torch.as_tensor(1.0 / (255.0 * std), dtype=torch.float32).view(3, 1, 1, 1)
    shift = torch.as_tensor(-mean / std, dtype=torch.float32).view(3, 1, 1, 1)
    return out.mul_(scale).add_(shift)


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
    assert out.shape == (3, 56, 56, 3) and out.dtype == torch.uint8 and out.is_contiguous()
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
        pixels = channels_first(t.apply(frames, plan))
        red = pixels[0, 0, 0]
        expected = torch.arange(plan.left, plan.left + 32, dtype=torch.float32)
        assert torch.equal(red, expected.flip(0) if plan.flip else expected)
        assert pixels[1, 0, :, 0].tolist() == list(range(plan.top, plan.top + 32))
    assert not any(ClipTransform(32, (48, 48), True).plan(48, 64, rng=np.random.default_rng(s)).flip for s in range(20))


@pytest.mark.parametrize("height,width", [(48, 96), (96, 48)])
def test_three_test_crops_run_along_the_long_side(height: int, width: int) -> None:
    t = ClipTransform(48, (48, 48), False, num_crops=3)
    frames = ramp(height, width)
    crops = [channels_first(t(frames, spatial_index=i)) for i in range(3)]
    assert all(c.shape == (3, 2, 48, 48) for c in crops)
    channel = 0 if width > height else 1  # red counts columns, green rows
    starts = [c[channel, 0, 0, 0].item() for c in crops]
    assert starts == [0, 24, 48]
    assert torch.equal(crops[1], channels_first(t(frames, spatial_index=1)))
    with pytest.raises(ValueError, match="spatial_index"):
        t(frames, spatial_index=3)


def test_centre_offsets_round_up_as_the_original() -> None:
    t = ClipTransform(48, (48, 48), False, num_crops=3)
    frames = ramp(48, 97)  # 49 columns to spare: the original's centre is ceil(49 / 2) = 25
    assert [t(frames, spatial_index=i)[0, 0, 0, 0].item() for i in range(3)] == [0, 25, 49]
    assert ClipTransform(48, (48, 48), False).plan(97, 48).top == 25


def test_one_crop_scales_the_short_side_then_takes_the_centre() -> None:
    t = ClipTransform(32, (40, 40), False)
    plan = t.plan(60, 120)
    assert (plan.height, plan.width, plan.top, plan.left, plan.flip) == (40, 80, 4, 24, False)
    assert t(ramp(60, 120)).shape == (2, 32, 32, 3)


def test_uint8_resize_matches_float_resize() -> None:
    t = ClipTransform(40, (40, 40), False)
    frames = ramp(60, 90)
    plan = t.plan(60, 90)
    reference = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(plan.height, plan.width), mode="bilinear")
    reference = reference[..., plan.top : plan.top + 40, plan.left : plan.left + 40].permute(1, 0, 2, 3)
    assert (channels_first(t(frames)) - reference).abs().max() <= 1.01


def test_normalisation_and_bgr() -> None:
    frames = torch.zeros(1, 1, 40, 40, 3, dtype=torch.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = 255, 51, 0
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.2, 0.1)
    rgb = Normalize(mean, std)(frames)
    assert rgb.shape == (1, 3, 1, 40, 40) and rgb.dtype == torch.float32 and rgb.is_contiguous()
    expected = [(1.0 - 0.5) / 0.25, (0.2 - 0.4) / 0.2, (0.0 - 0.3) / 0.1]
    assert torch.allclose(rgb[0, :, 0, 0, 0], torch.tensor(expected), atol=1e-5)
    bgr = Normalize(mean, std, bgr=True)(frames)
    assert torch.allclose(bgr, rgb.flip(1))
    last = Normalize(mean, std)(frames, channels_last=True)
    assert last.is_contiguous(memory_format=torch.channels_last_3d) and torch.equal(last, rgb)
    with pytest.raises(ValueError, match="uint8 B x T x H x W x 3"):
        Normalize()(frames[0])


# Frame sizes of the datasets (SSv1's 100-pixel frames, Kinetics as downloaded and as resized,
# portrait, odd sizes) and short sides that upscale, downscale and keep.
SIZES = [(100, 176), (100, 133), (256, 340), (320, 426), (240, 320), (427, 240), (37, 101)]
SHORTS = [182, 224, 256, 271, 288, 320, 37]


def region_mismatches() -> int:
    """Crops of ``resize_crop`` that differ from resizing whole and cropping, over SIZES x SHORTS
    with three crop positions each (corners and a random one): 0 when the region resize is exact."""
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    bad = 0
    for height, width in SIZES:
        frames = torch.randint(0, 256, (2, height, width, 3), dtype=torch.uint8, generator=gen)
        clip = frames.permute(0, 3, 1, 2)
        for short in SHORTS:
            scaled_h, scaled_w = short_side_size(height, width, short)
            crop = min(scaled_h, scaled_w, 224)
            whole = F.interpolate(clip, size=(scaled_h, scaled_w), mode="bilinear", align_corners=False)
            free_h, free_w = scaled_h - crop, scaled_w - crop
            for top, left in [(0, 0), (free_h, free_w), (int(rng.integers(free_h + 1)), int(rng.integers(free_w + 1)))]:
                region = resize_crop(clip, CropPlan(scaled_h, scaled_w, top, left, False), crop)
                bad += not torch.equal(region, whole[..., top : top + crop, left : left + crop])
    return bad


def test_the_region_resize_gives_the_pixels_of_the_whole_resize() -> None:
    assert region_mismatches() == 0


def test_the_region_resize_is_exact_in_the_generic_cpu_kernel_too() -> None:
    """CPUs with AVX512 run PyTorch's generic (not the AVX2) uint8 resize kernel; forcing the
    default capability runs that kernel on any CPU."""
    code = "from tests.datasets.test_transforms import region_mismatches; print(region_mismatches())"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("bgr", [False, True])
@pytest.mark.parametrize("augment", [None, ClipRandAugment(9.0, 2, 0.5)])
def test_the_network_gets_the_floats_of_the_float_path_to_the_bit(
    bgr: bool, augment: Optional[ClipRandAugment]
) -> None:
    """uint8 crops normalised on the network's side are the floats the loader made before (0.1.2):
    training clips (scale jitter, flips, RandAugment) and the three test crops, over frame sizes."""
    norm = Normalize((0.45, 0.4, 0.35), (0.225, 0.25, 0.2), bgr)
    train = ClipTransform(64, (72, 90), True, flip=True, augment=augment)
    test = ClipTransform(64, (64, 64), False, num_crops=3)
    gen = torch.Generator().manual_seed(1)
    for height, width in [(100, 176), (96, 72), (72, 90)]:
        frames = torch.randint(0, 256, (3, height, width, 3), dtype=torch.uint8, generator=gen)
        for seed in range(4):
            plan = train.plan(height, width, rng=np.random.default_rng(seed))
            ours = norm(train.apply(frames, plan, torch.Generator().manual_seed(seed))[None])[0]
            ref = float_path(frames, plan, 64, norm, augment, torch.Generator().manual_seed(seed))
            assert torch.equal(ours, ref), (height, width, seed)
        for view in range(3):
            ours = norm(test(frames, view)[None])[0]
            assert torch.equal(ours, float_path(frames, test.plan(height, width, view), 64, norm))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="larger than the short side"):
        ClipTransform(64, (48, 60), True)
    with pytest.raises(ValueError, match="num_crops"):
        ClipTransform(32, (48, 48), False, num_crops=2)
    with pytest.raises(ValueError, match="needs an rng"):
        ClipTransform(32, (48, 60), True)(ramp(48, 48))
    with pytest.raises(ValueError, match="uint8"):
        ClipTransform(32, (48, 48), False)(ramp(48, 48).float())
