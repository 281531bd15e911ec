"""Safe reading: a pickle that would run code is refused (and runs nothing) unless trusted; the
NumPy values of old PySlowFast files and the published layouts still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import REPO
from tests.helpers import tiny_vov3d
from tests.unsafe import malicious_checkpoint, numpy_values, save_as_numpy1
from vov3d.checkpoint import UnsafeCheckpointError, apply_checkpoint, read_checkpoint, save_checkpoint
from vov3d.config import load_config
from vov3d.engine.runtime import prepare_model


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = malicious_checkpoint(tmp_path / "evil.pyth", marker)
    with pytest.raises(UnsafeCheckpointError) as error:
        read_checkpoint(str(path))
    message = str(error.value)
    assert str(path) in message and "builtins.exec" in message
    assert "TRUST_CHECKPOINT True" in message and "--trust-checkpoint" in message
    assert not marker.exists()


def test_trust_loads_it(tmp_path: Path, vov3d_log) -> None:
    marker = tmp_path / "marker"
    path = malicious_checkpoint(tmp_path / "trusted.pyth", marker)
    assert torch.equal(read_checkpoint(str(path), trust=True)["model_state"]["w"], torch.zeros(1))
    assert marker.read_text() == "the pickle ran"  # what the opt-in means
    assert "unpickling it fully (trusted)" in vov3d_log.text


@pytest.mark.parametrize("numpy1", [False, True])
def test_numpy_values_load_safely(numpy1: bool, tmp_path: Path) -> None:
    model = tiny_vov3d()
    checkpoint = {"epoch": np.int64(9), "model_state": model.state_dict(), "optimizer_state": None, "cfg": ""}
    checkpoint.update(numpy_values())
    path = tmp_path / "old.pyth"
    save_as_numpy1(checkpoint, path) if numpy1 else torch.save(checkpoint, path)
    if numpy1:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        assert "numpy.core.multiarray.scalar" in names  # really NumPy 1's spelling
    loaded = apply_checkpoint(read_checkpoint(str(path)), str(path), tiny_vov3d(seed=1))
    assert loaded["epoch"] == 9 and loaded["best_top1"] == 77.5
    assert loaded["lrs"].tolist() == [0.0, 1.0, 2.0]


def test_our_own_checkpoints_need_nothing_more(tmp_path: Path) -> None:
    model = tiny_vov3d()
    save_checkpoint(str(tmp_path / "ours.pyth"), model, torch.optim.SGD(model.parameters(), lr=0.1), epoch=2)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(tmp_path / "ours.pyth")) == []


@pytest.mark.parametrize("name", ["K400_x3d_M", "SSv1_vov3d_M_F16"])
def test_published_layouts_with_numpy_values_load(name: str, shared_dir: Path, tmp_path: Path) -> None:
    """The manifest's tensor names and shapes, saved the way NumPy-1-era PySlowFast files are."""
    entry = json.loads((shared_dir / "reference" / "state_dict_manifest.json").read_text())[name]
    state = {key: torch.zeros(shape, dtype=getattr(torch, dtype)) for key, shape, dtype in entry["state_dict"]}
    path = save_as_numpy1(
        {"epoch": np.int64(255), "model_state": state, "optimizer_state": None, "cfg": "", **numpy_values()},
        tmp_path / f"{name}.pyth",
    )
    cfg = load_config([str(REPO / entry["config"])], ["LOG_MODEL_INFO", "False"])
    model = prepare_model(cfg, torch.device("cpu"), train=False)
    apply_checkpoint(read_checkpoint(str(path)), str(path), model, reinit_classifier=False)
    assert all(not v.any() for k, v in model.state_dict().items() if k in state)
