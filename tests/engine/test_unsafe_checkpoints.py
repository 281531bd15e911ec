"""A checkpoint whose pickle would write a marker file, given to every command that reads one:
run_net (TRAIN.CHECKPOINT_FILE_PATH, TEST.CHECKPOINT_FILE_PATH, auto-resume), predict and export.
Each refuses it naming the file, exits non-zero, and the marker never appears."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS, REPO
from tests.engine.conftest import SUBPROCESS_ENV, run_net_command
from tests.unsafe import malicious_checkpoint
from vov3d.checkpoint import CheckpointError
from vov3d.cli import export, predict
from vov3d.config import load_config
from vov3d.engine.run_folder import load_test_checkpoint
from vov3d.engine.runtime import prepare_model
from vov3d.utils.run_layout import RunFolder

X3D_TINY = str(CONFIGS / "quick" / "x3d_tiny.yaml")


@pytest.mark.parametrize("where", ["TRAIN.CHECKPOINT_FILE_PATH", "TEST.CHECKPOINT_FILE_PATH", "auto-resume"])
def test_run_net_refuses_it(where: str, colour_data: Path, tmp_path: Path) -> None:
    marker, output_dir = tmp_path / "marker", tmp_path / "out"
    if where == "auto-resume":
        evil = malicious_checkpoint(Path(RunFolder(str(output_dir)).checkpoint_path(1)), marker)
        opts = []
    else:
        evil = malicious_checkpoint(tmp_path / "evil.pyth", marker)
        opts = [where, str(evil)] + (["TRAIN.ENABLE", "False"] if where.startswith("TEST") else [])
    result = subprocess.run(
        run_net_command(colour_data, output_dir, "NUM_GPUS", 0, "SOLVER.MAX_EPOCH", 1, *opts),
        cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout[-2000:]
    assert f"checkpoint {evil}: refused to load" in result.stderr and "TRUST_CHECKPOINT" in result.stderr
    assert not marker.exists()


def test_predict_refuses_it_unless_trusted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "marker"
    evil = str(malicious_checkpoint(tmp_path / "evil.pyth", marker))
    args = ["--cfg", X3D_TINY, "--checkpoint", evil, "--device", "cpu", str(tmp_path / "video.mp4")]
    assert predict.main(args) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {evil}: refused to load" in err and "builtins.exec" in err and "--trust-checkpoint" in err
    assert not marker.exists()
    assert predict.main(["--trust-checkpoint", *args]) == 2  # loaded, then its one tensor does not fit
    assert marker.exists() and "does not fit" in capsys.readouterr().err


def test_export_refuses_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "marker"
    evil = str(malicious_checkpoint(tmp_path / "evil.pyth", marker))
    args = ["--cfg", X3D_TINY, "--checkpoint", evil, "--format", "torchscript", "--output", str(tmp_path / "m.pt")]
    assert export.main(args) == 2
    assert f"checkpoint {evil}: refused to load" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "m.pt").exists()


def test_trust_checkpoint_key_opts_in(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = malicious_checkpoint(tmp_path / "evil.pyth", marker)
    opts = ["OUTPUT_DIR", str(tmp_path), "LOG_MODEL_INFO", "False", "TEST.CHECKPOINT_FILE_PATH", str(evil)]
    cfg = load_config([X3D_TINY], [*opts, "TRUST_CHECKPOINT", "True"])
    with pytest.raises(CheckpointError, match="does not fit"):  # loaded, then its one tensor does not fit
        load_test_checkpoint(cfg, prepare_model(cfg, torch.device("cpu"), train=False))
    assert marker.exists()
