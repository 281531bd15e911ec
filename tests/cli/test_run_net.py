"""run_net's command line: the seed's positional overrides, --opts, and errors in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from vov3d.cli.run_net import parse_args, setup_cfg

VOV3D_L = "configs/Kinetics/vov3d/vov3d_L.yaml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/run_net.py", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_seed_command_line_form() -> None:
    args = parse_args(["--cfg", VOV3D_L, "DATA.PATH_TO_DATA_DIR", "/data", "NUM_GPUS", "8", "TRAIN.BATCH_SIZE", "64"])
    assert args.cfg_files == [VOV3D_L]
    assert args.opts == ["DATA.PATH_TO_DATA_DIR", "/data", "NUM_GPUS", "8", "TRAIN.BATCH_SIZE", "64"]
    cfg = setup_cfg(args)
    assert (cfg.DATA.PATH_TO_DATA_DIR, cfg.NUM_GPUS, cfg.TRAIN.BATCH_SIZE) == ("/data", 8, 64)


def test_opts_form_and_several_files() -> None:
    args = parse_args(["--cfg", VOV3D_L, "configs/quick/vov3d_tiny.yaml", "--opts", "RNG_SEED", "7"])
    assert args.cfg_files == [VOV3D_L, "configs/quick/vov3d_tiny.yaml"]
    assert args.opts == ["RNG_SEED", "7"]


def test_overrides_after_other_flags_and_shards() -> None:
    args = parse_args(["--cfg", VOV3D_L, "--num_shards", "2", "--shard_id", "1", "RNG_SEED", "3"])
    cfg = setup_cfg(args)
    assert (cfg.NUM_SHARDS, cfg.SHARD_ID, cfg.RNG_SEED) == (2, 1, 3)


def test_unknown_flag_is_rejected(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--cfg", VOV3D_L, "--learning_rate", "3"])
    assert "--learning_rate" in capsys.readouterr().err


def test_help_in_a_subprocess() -> None:
    result = run("--help")
    assert result.returncode == 0 and "--cfg" in result.stdout and "--init_method" in result.stdout


def test_bad_key_exits_nonzero_naming_the_key() -> None:
    result = run("--cfg", VOV3D_L, "SOLVER.BASE_RL", "0.1")
    assert result.returncode == 2
    assert "SOLVER.BASE_RL" in result.stderr and "SOLVER.BASE_LR" in result.stderr


def test_odd_override_count_exits_nonzero() -> None:
    result = run("--cfg", VOV3D_L, "NUM_GPUS", "8", "TRAIN.BATCH_SIZE")
    assert result.returncode == 2 and "'TRAIN.BATCH_SIZE' has no value" in result.stderr


def test_missing_config_file_exits_nonzero() -> None:
    result = run("--cfg", "configs/nope.yaml")
    assert result.returncode == 2 and "configs/nope.yaml" in result.stderr


def test_unregistered_model_stops_the_run_naming_the_key(tmp_path) -> None:
    """The config layer knows no registry: the name is checked where the model is built, before
    any data is read, and the run stops with the key and where it was set."""
    result = run("--cfg", "configs/quick/vov3d_tiny.yaml", "MODEL.MODEL_NAME", "ResNet", "OUTPUT_DIR", str(tmp_path))
    assert result.returncode == 1
    assert "MODEL.MODEL_NAME = 'ResNet' (set in the command line): not a registered model" in result.stderr
