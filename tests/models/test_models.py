"""Every registered network in every size: outputs, gradients, class counts, inputs, model info."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.models.conftest import FRAMES, SIZES, TEST_CROP, TRAIN_CROP, model_cfg
from vov3d.checkpoint import find_classifier
from vov3d.models import MODEL_REGISTRY, build_model
from vov3d.utils import complexity

CLASSES = 400


def clip(batch: int = 2, crop: int = TRAIN_CROP) -> torch.Tensor:
    return torch.randn(batch, 3, FRAMES, crop, crop)


def test_every_registered_model_has_sizes_under_test() -> None:
    tested = {model_cfg(size).MODEL.MODEL_NAME for size in SIZES}
    assert tested == set(MODEL_REGISTRY.names()) == {"X3D", "VoV3D"}


@pytest.mark.parametrize("size", SIZES)
def test_train_mode_returns_logits(size: str) -> None:
    torch.manual_seed(0)
    model = build_model(model_cfg(size)).train()
    for crop in (TRAIN_CROP, TEST_CROP):  # a larger clip: logits averaged over the positions
        logits = model(clip(crop=crop))
        assert logits.shape == (2, CLASSES)
        assert torch.isfinite(logits).all()
    assert not torch.allclose(logits.softmax(-1).sum(-1), logits.sum(-1)), "train mode must not softmax"


@pytest.mark.parametrize("size", SIZES)
def test_eval_mode_returns_probabilities(size: str) -> None:
    torch.manual_seed(0)
    model = build_model(model_cfg(size)).eval()
    with torch.no_grad():
        for crop in (TRAIN_CROP, TEST_CROP):  # 1x1x1 and 1x2x2 positions after pooling
            probs = model(clip(crop=crop))
            assert probs.shape == (2, CLASSES)
            assert torch.isfinite(probs).all() and (probs >= 0).all()
            torch.testing.assert_close(probs.sum(-1), torch.ones(2))


@pytest.mark.parametrize("size", SIZES)
def test_every_parameter_gets_a_gradient(size: str) -> None:
    # Without zero-init, no block output is multiplied by 0, so every gradient must be nonzero.
    torch.manual_seed(0)
    model = build_model(model_cfg(size, RESNET__ZERO_INIT_FINAL_BN=False)).train()
    loss = F.cross_entropy(model(clip()), torch.tensor([1, 2]))
    loss.backward()
    without = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not without, f"no gradient for {without[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("size", SIZES)
def test_zero_init_final_bn_starts_every_block_as_its_shortcut(size: str) -> None:
    """With zero-init, only the transforms' insides get zero gradients at the first step."""
    torch.manual_seed(0)
    model = build_model(model_cfg(size, RESNET__ZERO_INIT_FINAL_BN=True)).train()
    F.cross_entropy(model(clip()), torch.tensor([0, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        inside = "branch2." in name and "branch2.c_bn." not in name
        assert bool(p.grad.abs().sum() > 0) != inside, name


@pytest.mark.parametrize("size", SIZES)
def test_other_class_count(size: str) -> None:
    model = build_model(model_cfg(size, MODEL__NUM_CLASSES=7))
    assert model.head.projection.weight.shape == (7, 2048)
    assert model.train()(clip()).shape == (2, 7)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clip()).sum(-1), torch.ones(2))


@pytest.mark.parametrize("size", SIZES)
def test_the_network_names_its_classifier(size: str) -> None:
    """``get_classifier()`` is the layer that makes the class scores; its tensors keep the legacy
    name, so published checkpoints load unchanged, and it is found inside torch.compile too."""
    model = build_model(model_cfg(size, MODEL__NUM_CLASSES=7)).train()
    classifier = model.get_classifier()
    assert isinstance(classifier, torch.nn.Linear) and classifier.out_features == 7
    assert find_classifier(model) == find_classifier(torch.compile(model)) == ("head.projection", classifier)
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.copy_(torch.arange(7.0))
        torch.testing.assert_close(model(clip()), torch.arange(7.0).expand(2, 7))


@pytest.mark.parametrize("size", ["X3D-XS", "VoV3D-M"])
def test_one_element_list_input(size: str) -> None:
    model = build_model(model_cfg(size)).eval()
    x = clip()
    with torch.no_grad():
        torch.testing.assert_close(model([x]), model(x))
        torch.testing.assert_close(model((x,)), model(x))
        with pytest.raises(ValueError, match="one clip"):
            model([x, x])


@pytest.mark.parametrize("size", ["X3D-XS", "VoV3D-M"])
def test_clip_smaller_than_the_pooling_window(size: str) -> None:
    """Fewer frames or pixels than the training clip are pooled over what there is."""
    model = build_model(model_cfg(size)).eval()
    with torch.no_grad():
        probs = model(torch.randn(1, 3, FRAMES - 2, 32, 32))
    torch.testing.assert_close(probs.sum(-1), torch.ones(1))


def test_model_info_logged_once_at_the_train_crop(vov3d_log, monkeypatch) -> None:
    calls = []
    count = complexity.count_gmacs
    monkeypatch.setattr(complexity, "count_gmacs", lambda *a: calls.append(a[1:]) or count(*a))
    cfg = model_cfg("VoV3D-M", LOG_MODEL_INFO=True)
    model = build_model(cfg)
    assert calls == [], "build_model only builds: the engine logs the model info, once, on rank 0"
    complexity.log_model_info(model, cfg)
    lines = [r.getMessage() for r in vov3d_log.records if r.name == "vov3d.models"]
    assert len(lines) == 1 and calls == [(FRAMES, TRAIN_CROP)]
    params = f"{complexity.count_parameters(model):,}"
    assert params in lines[0] and "GMACs (fvcore)" in lines[0] and f"{FRAMES}x{TRAIN_CROP}x{TRAIN_CROP}" in lines[0]
    assert model.training, "counting GMACs in eval mode must leave the model in train mode"


def test_model_info_survives_an_fvcore_failure(vov3d_log, monkeypatch) -> None:
    def fail(*args):
        raise RuntimeError("tracing failed")

    monkeypatch.setattr(complexity, "count_gmacs", fail)
    model = build_model(model_cfg("X3D-XS"))
    params, gmacs = complexity.log_model_info(model, model_cfg("X3D-XS"))
    assert gmacs is None and params == complexity.count_parameters(model)
    assert any("tracing failed" in r.getMessage() and r.levelname == "WARNING" for r in vov3d_log.records)
    assert any("GMACs unknown" in r.getMessage() for r in vov3d_log.records)
