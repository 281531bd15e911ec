"""The registry: decorator, duplicates, unknown names, case-insensitive datasets."""

import pytest

from vov3d.datasets import DATASET_REGISTRY
from vov3d.utils.registry import Registry


def test_register_and_get() -> None:
    reg = Registry("thing")

    @reg.register()
    class Alpha:
        pass

    @reg.register("beta")
    def make_beta() -> None:
        return None

    assert reg.get("Alpha") is Alpha and reg.get("beta") is make_beta
    assert reg.names() == ["Alpha", "beta"] and "Alpha" in reg and "alpha" not in reg


def test_duplicate_is_an_error() -> None:
    reg = Registry("thing")
    reg.register("x")(int)
    with pytest.raises(KeyError, match="'x' is already registered"):
        reg.register("x")(float)


def test_unknown_lists_known() -> None:
    reg = Registry("model")
    reg.register("X3D")(int)
    reg.register("VoV3D")(float)
    with pytest.raises(KeyError, match="unknown model 'ResNet'; registered: VoV3D, X3D"):
        reg.get("ResNet")


def test_case_insensitive() -> None:
    reg = Registry("dataset", case_insensitive=True)
    reg.register("Kinetics")(int)
    assert reg.get("KINETICS") is int and "kinetics" in reg
    with pytest.raises(KeyError):
        reg.register("kinetics")(float)


def test_datasets_are_case_insensitive() -> None:
    assert {"kinetics", "ssv1", "ssv2"} <= set(DATASET_REGISTRY.names())
    assert DATASET_REGISTRY.get("Kinetics") is DATASET_REGISTRY.get("kinetics")
