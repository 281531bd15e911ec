"""The eight published checkpoints: our configs build networks with exactly their tensors, their
files load with nothing left over, and fvcore GMACs match MODELS.md within 1%."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO, SHARED
from vov3d.checkpoint import apply_checkpoint, read_checkpoint
from vov3d.config import get_cfg
from vov3d.models import build_model
from vov3d.utils.complexity import log_model_info

MANIFEST = SHARED / "reference" / "state_dict_manifest.json"
MODELS_MD = SHARED / "reference" / "MODELS.md"
pytestmark = pytest.mark.needs_shared("reference/state_dict_manifest.json")

ENTRIES = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}


def reference_figures() -> dict[str, tuple[int, float]]:
    """MODELS.md's "Reference figures" table: entry -> (parameters, fvcore GMACs)."""
    figures = {}
    for line in MODELS_MD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].split()[0] in ENTRIES:
            figures[cells[0].split()[0]] = (int(cells[4].replace(",", "")), float(cells[5].split()[0]))
    return figures


def published_checkpoint(entry: dict[str, Any], path: Path) -> None:
    """A file in the published layout holding random tensors of the manifest's shapes."""
    state = {}
    for name, shape, dtype in entry["state_dict"]:
        if dtype == "int64":
            state[name] = torch.randint(0, 1000, shape)
        else:
            state[name] = torch.randn(shape, dtype=getattr(torch, dtype))
    optimizer_state = {"state": {}, "param_groups": [{"lr": 0.1, "params": list(range(10))}]}
    cfg = f"MODEL:\n  NUM_CLASSES: {entry['num_classes']}\n"
    torch.save({"epoch": 256, "model_state": state, "optimizer_state": optimizer_state, "cfg": cfg}, path)


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_published_network(key: str, tmp_path: Path, vov3d_log) -> None:
    entry = ENTRIES[key]
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / entry["config"]))
    assert (cfg.MODEL.NUM_CLASSES, cfg.DATA.NUM_FRAMES) == (entry["num_classes"], entry["num_frames"])
    assert (cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE) == (entry["train_crop"], entry["test_crop"])
    cfg.LOG_MODEL_INFO = False
    model = build_model(cfg)

    # Exactly the published tensors: names, shapes, dtypes (our names are the legacy ones).
    ours = {name: (list(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in model.state_dict().items()}
    theirs = {name: (shape, dtype) for name, shape, dtype in entry["state_dict"]}
    assert sorted(set(theirs) - set(ours)) == [], "tensors of the published file the model lacks"
    assert sorted(set(ours) - set(theirs)) == [], "model tensors the published file lacks"
    assert {k: v for k, v in ours.items() if theirs[k] != v} == {}, "shape or dtype differs"

    # Parameter count and GMACs, measured once, as the engine logs them.
    params, gmacs = log_model_info(model, cfg)
    assert params == entry["num_parameters"]
    ref_params, ref_gmacs = reference_figures()[key]
    assert ref_params == params
    assert gmacs == pytest.approx(ref_gmacs, rel=0.01)

    # A checkpoint in the published layout loads with nothing left over and nothing re-initialised.
    path = tmp_path / f"{key}.pth"
    published_checkpoint(entry, path)
    checkpoint = apply_checkpoint(read_checkpoint(str(path)), str(path), model)
    assert checkpoint["epoch"] == 256
    saved = torch.load(path, weights_only=True)["model_state"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    assert not any("re-initialised" in r.getMessage() for r in vov3d_log.records)


def test_reference_table_covers_every_entry() -> None:
    figures = reference_figures()
    assert set(figures) == set(ENTRIES)
    assert all(figures[k][0] == ENTRIES[k]["num_parameters"] for k in ENTRIES)


def test_published_configs_are_ours() -> None:
    paths = {entry["config"] for entry in ENTRIES.values()}
    assert all(re.fullmatch(r"configs/[\w/]+\.yaml", p) and (REPO / p).is_file() for p in paths)
