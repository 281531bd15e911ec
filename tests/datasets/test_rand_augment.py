"""RandAugment from PySlowFast's AUG.AA_TYPE: the policy string, the same ops on every frame, the
hook in the training transform only, and the old AUG keys that vov3d does not implement."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
import torch

from vov3d.config import ConfigError, get_cfg
from vov3d.datasets.clip_dataset import ClipDataset
from vov3d.datasets.rand_augment import ClipRandAugment
from vov3d.datasets.transforms import ClipTransform


def test_policy_strings() -> None:
    assert ClipRandAugment.parse("rand-m7-n4-mstd0.5-inc1") == ClipRandAugment(7.0, 4, 0.5)
    assert ClipRandAugment.parse("rand-m9-n2") == ClipRandAugment(9.0, 2, 0.0)
    for spec, message in [
        ("augmix-m5", "not a RandAugment policy"),
        ("rand-m7-n4-inc0", "only inc1"),
        ("rand-m11-n2", "m must be in 0 .. 10"),
        ("rand-m7-w3", "unknown part 'w3'"),
    ]:
        with pytest.raises(ValueError, match=message):
            ClipRandAugment.parse(spec)


@pytest.mark.parametrize("key, value", [("AUG.AA_TYPE", "rand-m7-n4-inc0"), ("AUG.INTERPOLATION", "bicubic")])
def test_a_bad_setting_names_the_key(key: str, value: str) -> None:
    cfg = get_cfg()
    cfg.merge_from_list([key, value])
    with pytest.raises(ConfigError, match=key):
        ClipRandAugment.from_cfg(cfg)


def _clip(frames: int = 4) -> torch.Tensor:
    """uint8 T x C x H x W: a white bar moving right on a dark noisy ground, different in every frame."""
    clip = torch.randint(0, 100, (frames, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for t in range(frames):
        clip[t, :, 4:12, 2 + 2 * t : 6 + 2 * t] = 255
    return clip


def test_every_frame_gets_the_same_ops() -> None:
    clip, augment, outs = _clip(), ClipRandAugment(9.0, 3, magnitude_std=0.5), set()
    for seed in range(5):
        torch.manual_seed(seed)
        out = augment(clip)
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert not torch.equal(out, clip)
        for t in range(len(clip)):  # the same draws on one frame alone give that frame's result
            torch.manual_seed(seed)
            assert torch.equal(augment(clip[t : t + 1]), out[t : t + 1]), (seed, t)
        torch.manual_seed(seed)
        assert torch.equal(augment(clip), out)  # the seed decides
        outs.add(out.numpy().tobytes())
    assert len(outs) == 5  # and another seed draws other ops


def test_interpolation_and_magnitude_reach_torchvision() -> None:
    # One op on a black-and-white clip: where nearest and bilinear differ the op moved pixels;
    # nearest then only copies them (and fills with 0), bilinear blends them, and magnitude 0
    # moves nothing.
    clip = (_clip() > 127).to(torch.uint8) * 255
    moved = 0
    for seed in range(20):
        outs = {}
        for mode in ("nearest", "bilinear"):
            torch.manual_seed(seed)
            outs[mode] = ClipRandAugment(9.0, 1, interpolation=mode)(clip)
        if torch.equal(outs["nearest"], outs["bilinear"]):
            continue
        moved += 1
        assert set(outs["nearest"].unique().tolist()) <= {0, 255}
        assert not set(outs["bilinear"].unique().tolist()) <= {0, 255}
        torch.manual_seed(seed)
        assert torch.equal(ClipRandAugment(0.0, 1)(clip), clip)
    assert moved >= 3  # rotations, shears and translations are 5 of torchvision's 14 ops


def test_the_training_transform_augments_the_uint8_crop() -> None:
    seen = []

    def augment(clip: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        seen.append((clip.dtype, tuple(clip.shape), generator))
        return torch.zeros_like(clip)

    frames = torch.full((4, 40, 48, 3), 200, dtype=torch.uint8)
    transform = ClipTransform(32, (36, 40), True, augment=augment)
    generator = torch.Generator()
    out = transform(frames, rng=np.random.default_rng(0), generator=generator)
    assert seen == [(torch.uint8, (4, 3, 32, 32), generator)] and (out == 0).all() and out.shape == (4, 32, 32, 3)


@pytest.mark.parametrize("magnitude_std", [0.0, 0.5])
def test_a_generator_draws_what_torchvision_draws_from_the_global_one(magnitude_std: float) -> None:
    """The ops drawn from a generator are torchvision's RandAugment's for the same seed, and the
    global generator is left alone; with no generator the global one draws as torchvision's does."""
    from torchvision.transforms import InterpolationMode, v2

    clip, augment = _clip(), ClipRandAugment(7.0, 3, magnitude_std)
    for seed in range(10):
        torch.manual_seed(seed)
        magnitude = 7.0
        if magnitude_std:
            magnitude = float(torch.normal(7.0, magnitude_std, ()).clamp(0, 10))
        policy = v2.RandAugment(3, round(magnitude), 11, interpolation=InterpolationMode.BILINEAR)
        expected = policy(clip)
        state = torch.get_rng_state()
        assert torch.equal(augment(clip, torch.Generator().manual_seed(seed)), expected), seed
        assert torch.equal(torch.get_rng_state(), state)
        torch.manual_seed(seed)
        assert torch.equal(augment(clip), expected), seed


def test_aug_enable_hooks_randaugment_into_training_only() -> None:
    cfg = get_cfg()
    cfg.merge_from_list(["AUG.ENABLE", True, "AUG.AA_TYPE", "rand-m5-n2", "DATA.TRAIN_JITTER_SCALES", [40, 48],
                         "DATA.TRAIN_CROP_SIZE", 32, "DATA.TEST_CROP_SIZE", 32])  # fmt: skip
    assert ClipDataset.view_arguments(cfg, "train")["transform"].augment == ClipRandAugment(5.0, 2)
    assert ClipDataset.view_arguments(cfg, "val")["transform"].augment is None
    cfg.AUG.ENABLE = False
    assert ClipDataset.view_arguments(cfg, "train")["transform"].augment is None


def test_pyslowfast_aug_keys_vov3d_lacks_are_accepted_only_when_off(vov3d_log: pytest.LogCaptureFixture) -> None:
    # vov3d_log, not caplog: an earlier test's setup_logging stops vov3d's loggers propagating.
    get_cfg().merge_from_list(["AUG.RE_PROB", 0.0, "AUG.RE_MODE", "pixel"])
    assert "ignoring AUG.RE_PROB" in vov3d_log.text
    with pytest.raises(ConfigError, match="AUG.RE_PROB = .* is not supported"):
        get_cfg().merge_from_list(["AUG.RE_PROB", 0.25])
