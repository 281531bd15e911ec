"""``tools/benchmark.py``: the command line runs each subcommand end to end on tiny inputs, writes
the JSON it promises, and refuses a GPU it does not have."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS, REPO
from vov3d.cli.benchmark import main


def test_model_subcommand_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "model.json"
    argv = [
        "--json",
        str(out),
        "--threads",
        "1",
        "model",
        "--configs",
        str(CONFIGS / "quick/vov3d_tiny.yaml"),
        "--variants",
        "cl,cl+dw=auto",
        "--modes",
        "infer,train",
        "--frames",
        "4",
        "--crop",
        "32",
        "--warmup",
        "0",
        "--repeats",
        "1",
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["command"] == "model" and result["environment"]["torch"] == torch.__version__
    rows = {(row["mode"], row["variant"]): row for row in result["rows"]}
    assert set(rows) == {(mode, v) for mode in ("infer", "train") for v in ("base", "cl", "cl+dw=auto")}
    for row in rows.values():
        assert row["clips_per_s"] > 0 and row["peak_mib"] >= 0 and row["rel_diff"] < 1e-4
    for (mode, _), row in rows.items():  # each against the base of its own mode, from its own timings
        assert row["speedup"] == pytest.approx(row["clips_per_s"] / rows[(mode, "base")]["clips_per_s"])
        assert row["clips_per_s"] == pytest.approx(2 / row["times_s"][0])  # batch 2 on the CPU, one repeat
    assert rows[("train", "base")]["clips_per_s"] < rows[("infer", "base")]["clips_per_s"]  # backward costs
    assert "| vov3d_tiny | train | cl+dw=auto |" in capsys.readouterr().out


def test_unknown_variant_and_missing_gpu_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="unknown variant option 'fast'"):
        main(["--json", str(tmp_path / "x.json"), "model", "--variants", "cl+fast"])
    if not torch.cuda.is_available():
        assert main(["--device", "cuda", "model"]) == 2
        assert "no GPU" in capsys.readouterr().err


def test_script_lists_the_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/benchmark.py"), "--help"], capture_output=True, text=True, check=True
    )
    assert all(command in result.stdout for command in ("model", "data", "train", "checkpoint"))
