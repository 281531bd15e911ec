"""BN.WEIGHT_DECAY_GROUPS over every registered model: by name (the original code: "bn" in the
parameter's name, the default) and by type (every BatchNorm layer)."""

from __future__ import annotations

import pytest
import torch.nn as nn

from tests.conftest import CONFIGS
from tests.models.conftest import SIZES, model_cfg
from vov3d.config import ConfigError, load_config
from vov3d.engine.solver import build_optimizer
from vov3d.models import build_model

# BN parameters (weights and biases) that the two rules place differently, as measured on the
# original code: VoV3D's D(2+1)D units hold BatchNorms named a.1 and c.1.
DIFFERING = {"X3D-XS": 0, "X3D-S": 0, "X3D-M": 0, "X3D-L": 0, "VoV3D-M": 160, "VoV3D-L": 220}


def decay_by_name(model: nn.Module, rule: str) -> dict[str, float]:
    cfg = model_cfg("X3D-XS")
    cfg.SOLVER.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY_GROUPS = 5e-5, 0.0, rule
    optimizer = build_optimizer(model, cfg)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(decay)  # no parameter twice
    return {name: decay[id(p)] for name, p in model.named_parameters()}


@pytest.mark.parametrize("size", SIZES)
def test_both_rules_on_every_model(size: str) -> None:
    model = build_model(model_cfg(size))
    in_bn_layer = {
        f"{module_name}.{name}"
        for module_name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        for name, _ in module.named_parameters(recurse=False)
    }
    by_name, by_type = decay_by_name(model, "name"), decay_by_name(model, "type")
    for name in by_name:
        assert by_name[name] == (0.0 if "bn" in name else 5e-5), name
        assert by_type[name] == (0.0 if name in in_bn_layer else 5e-5), name
    assert sum(by_name[n] != by_type[n] for n in by_name) == DIFFERING[size]
    assert all(by_type[n] == 0.0 for n in by_name if by_name[n] == 0.0)  # "bn" names are all BatchNorms
    if size.startswith("VoV3D"):
        unit = "s2.pathway0_res0.branch2.layers.0"
        for name in (f"{unit}.a.1.weight", f"{unit}.a.1.bias", f"{unit}.c.1.weight"):
            assert (by_name[name], by_type[name]) == (5e-5, 0.0)  # SOLVER group under the default


def test_paper_configs_default_to_the_original_rule() -> None:
    files = sorted(CONFIGS.glob("[KS]*/**/*.yaml"))
    assert len(files) > 20
    assert {load_config([str(f)]).BN.WEIGHT_DECAY_GROUPS for f in files} == {"name"}


def test_an_unknown_rule_is_a_config_error() -> None:
    cfg = model_cfg("X3D-XS")
    cfg.BN.WEIGHT_DECAY_GROUPS = "module"
    with pytest.raises(ConfigError, match="BN.WEIGHT_DECAY_GROUPS.*name, type"):
        build_optimizer(nn.Linear(2, 2), cfg)
