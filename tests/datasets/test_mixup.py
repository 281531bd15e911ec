"""Mixup and CutMix of a training batch: mixed pixels and soft targets agree on the weight, the
MIXUP keys are checked, and the loss and the training loop take the soft targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import default_cfg
from vov3d.config import ConfigError, get_cfg
from vov3d.datasets.mixup import MixUp, smoothed_one_hot
from vov3d.engine.solver import build_loss

CLASSES = 5


def flat_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """4 clips (3 x 2 x 8 x 8) of one value each: 0, 1, 2, 3; labels 0..3."""
    clips = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 3, 2, 8, 8).contiguous()
    return clips, torch.arange(4)


def mix(**kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return MixUp(CLASSES, **kwargs)(*flat_batch())


def test_mixup_weights_pixels_and_targets_alike() -> None:
    clips, target = mix(alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.0)
    lam = target[0, 0].item()  # clip 0 (value 0) is mixed with clip 3 (value 3)
    assert 0 < lam < 1 and target[0, 3].item() == pytest.approx(1 - lam)
    assert torch.allclose(clips[0], torch.full_like(clips[0], 3 * (1 - lam)))
    assert torch.allclose(target.sum(dim=1), torch.ones(4))


def test_cutmix_pastes_one_box_into_every_frame_and_weights_by_its_area() -> None:
    clips, target = mix(alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    pasted = clips[0] == 3  # clip 0 is 0 where it is its own
    assert pasted.any() and (pasted == pasted[:1, :1]).all()  # same box in every channel and frame
    assert target[0, 3].item() == pytest.approx(pasted.float().mean().item())
    assert target[0, 0].item() == pytest.approx(1 - pasted.float().mean().item())


def test_unmixed_batches_get_smoothed_one_hot_targets() -> None:
    clips, target = mix(prob=0.0, label_smoothing=0.1)
    assert torch.equal(clips, flat_batch()[0])
    assert torch.allclose(target, smoothed_one_hot(torch.arange(4), CLASSES, 0.1))
    assert target[0, 0].item() == pytest.approx(0.9 + 0.1 / CLASSES)


def mixup_cfg(*opts):
    return default_cfg("MODEL.NUM_CLASSES", CLASSES, *opts)


def test_mixup_keys() -> None:
    assert MixUp.from_cfg(mixup_cfg()) is None
    mixer = MixUp.from_cfg(mixup_cfg("MIXUP.ENABLE", True, "MIXUP.ALPHA", 0.2, "MIXUP.SWITCH_PROB", 0.0))
    assert mixer == MixUp(CLASSES, 0.2, 1.0, 1.0, 0.0, 0.1)
    for opts, key in [
        (("MIXUP.ALPHA", 0.0, "MIXUP.CUTMIX_ALPHA", 0.0), "MIXUP.ALPHA"),
        (("MIXUP.PROB", 1.5), "MIXUP.PROB"),
        (("MODEL.LOSS_FUNC", "soft_cross_entropy", "MODEL.LABEL_SMOOTHING", 0.1), "MODEL.LABEL_SMOOTHING"),
    ]:
        with pytest.raises(ConfigError, match=key):
            MixUp.from_cfg(mixup_cfg("MIXUP.ENABLE", True, *opts))


@pytest.mark.parametrize("loss", ["cross_entropy", "soft_cross_entropy"])
def test_both_losses_take_soft_targets(loss: str) -> None:
    logits = torch.randn(4, CLASSES)
    target = torch.softmax(torch.randn(4, CLASSES), dim=1)
    expected = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    assert build_loss(mixup_cfg("MODEL.LOSS_FUNC", loss))(logits, target).item() == pytest.approx(expected.item())


def test_the_training_loop_mixes_and_feeds_soft_targets(tmp_path: Path) -> None:
    from tests.helpers import Tiny, run_epoch, tiny_cfg

    seen = []

    def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seen.append(targets.shape)
        return build_loss(get_cfg())(logits, targets)

    cfg = tiny_cfg(tmp_path, "MODEL.NUM_CLASSES", 2, "MIXUP.ENABLE", True, "MIXUP.LABEL_SMOOTH_VALUE", 0.0)
    stats = run_epoch(Tiny(), cfg, loss_fn=loss_fn)
    assert seen == [torch.Size([2, 2])] * 4 and stats["loss"] > 0
