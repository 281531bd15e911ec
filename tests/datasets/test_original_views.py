"""The paper's test protocol on the real Kinetics clips of ../shared/data/real-videos: all 60 views
(10 temporal x 3 spatial, 16 x 5 frames, 256 crops) hold the frames and crops the original loader
takes, recomputed here from a front-to-back decode and the original formulas."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.datasets.helpers import reference_frames
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.datasets import build_dataset

KINETICS_CLIPS = {"kinetics400_arm_wrestling_340x256_28fps.mp4": 28, "kinetics_style_340x256_30fps.mp4": 30}


@pytest.mark.parametrize("name", sorted(KINETICS_CLIPS))
def test_every_test_view_is_the_originals(real_videos: Path, tmp_path: Path, name: str) -> None:
    write_kinetics_csvs(tmp_path, [(name, 0)])
    cfg = small_cfg(tmp_path, real_videos)
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 16, 5
    cfg.DATA.TRAIN_JITTER_SCALES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = [256, 320], 224, 256
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 10, 3
    ds = build_dataset(cfg, "test")
    _, frames = reference_frames(real_videos / name)
    n, fps = len(frames), KINETICS_CLIPS[name]
    clip_size = 5 * 16 / 30 * fps
    delta = max(n - clip_size, 0)
    mean, std = torch.tensor(cfg.DATA.MEAN).view(3, 1, 1, 1), torch.tensor(cfg.DATA.STD).view(3, 1, 1, 1)
    for view in range(30):
        k, crop = divmod(view, 3)
        start = delta * k / 10
        indices = [min(math.floor(start + i * (clip_size - 1) / 15), n - 1) for i in range(16)]
        left = (0, math.ceil((340 - 256) / 2), 340 - 256)[crop]  # 256 x 340 frames: no resize
        expected = np.stack([frames[i][:, left : left + 256] for i in indices])
        pixels = ((ds[view][0] * std + mean) * 255).round().permute(1, 2, 3, 0).to(torch.uint8).numpy()
        assert np.array_equal(pixels, expected), (name, view)
