"""export: TorchScript and ONNX round trips for the tiny X3D and VoV3D, the dynamic batch axis,
and a failed check writing nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import CONFIGS
from vov3d.checkpoint import save_checkpoint
from vov3d.cli.export import main
from vov3d.config import load_config
from vov3d.models import build_model
from vov3d.utils.run_layout import RunFolder

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
TINY = {name: str(CONFIGS / "quick" / f"{name}_tiny.yaml") for name in ("x3d", "vov3d")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, torch.nn.Module]]:
    """Per network: a checkpoint and its model in eval mode, with BN statistics that are not the
    initial ones, as after training."""
    root = tmp_path_factory.mktemp("export")
    models = {}
    for name, cfg_file in TINY.items():
        torch.manual_seed(0)
        model = build_model(load_config([cfg_file]))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        save_checkpoint(str(root / f"{name}.pyth"), model)
        models[name] = (root / f"{name}.pyth", model.eval())
    return models


def run_export(trained: dict, name: str, fmt: str, output: Path, *args: str) -> int:
    checkpoint = trained[name][0]
    return main(["--cfg", TINY[name], "--checkpoint", str(checkpoint), "--format", fmt, "--output", str(output), *args])


@pytest.mark.parametrize("name", sorted(TINY))
def test_onnx_round_trip_with_a_dynamic_batch(trained: dict, name: str, tmp_path: Path, capsys) -> None:
    import onnx
    import onnxruntime

    output = tmp_path / f"{name}.onnx"
    assert run_export(trained, name, "onnx", output) == 0
    assert "max |onnx - pytorch| = " in capsys.readouterr().out
    dims = onnx.load(str(output)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 4, 32, 32]
    clips = torch.randn(3, 3, 4, 32, 32)  # a batch size the export never saw
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"clip": clips.numpy()})
    with torch.no_grad():
        expected = trained[name][1](clips).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)


@pytest.mark.parametrize("name", sorted(TINY))
def test_torchscript_round_trip(trained: dict, name: str, tmp_path: Path, capsys) -> None:
    output = tmp_path / f"{name}.pt"
    assert run_export(trained, name, "torchscript", output, "--frames", "6", "--crop", "40") == 0
    assert "input 1x3x6x40x40" in capsys.readouterr().out
    module = torch.jit.load(str(output))
    clips = torch.randn(2, 3, 6, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(module(clips), trained[name][1](clips), atol=1e-5, rtol=0)


def test_difference_above_tolerance_fails_and_writes_nothing(trained: dict, tmp_path: Path, monkeypatch, capsys):
    from vov3d.inference import export

    run = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *args: [out + 1e-3 for out in run(*args)])
    output = tmp_path / "x3d.pt"
    assert run_export(trained, "x3d", "torchscript", output) == 1
    assert "differs from the PyTorch model by 0.001" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_missing_onnxruntime_says_what_to_install(trained: dict, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert run_export(trained, "x3d", "onnx", tmp_path / "x3d.onnx") == 2
    assert 'pip install -e ".[onnx]"' in capsys.readouterr().err


def test_a_run_folder_exports_its_newest_checkpoint(trained: dict, tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path / "run"))
    os.makedirs(run.checkpoints_dir)
    Path(run.checkpoint_path(4)).write_bytes(trained["x3d"][0].read_bytes())
    output = tmp_path / "x3d.pt"
    args = ["--cfg", TINY["x3d"], "--checkpoint", run.root, "--format", "torchscript"]
    assert main([*args, "--output", str(output)]) == 0
    clips = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(output))(clips), trained["x3d"][1](clips), atol=1e-5, rtol=0)
