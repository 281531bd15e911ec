"""``tools/benchmark.py``: the command line runs each subcommand end to end on tiny inputs, writes
the JSON it promises, and refuses a GPU it does not have."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import CONFIGS, REPO
from vov3d.cli.benchmark import main
from vov3d.datasets.encode import write_video
from vov3d.datasets.motion_demo import DemoSpec, render_video


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


def test_num_samples_that_do_not_divide_the_batch_stop_before_any_input_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    inputs = tmp_path / "inputs"
    for samples in ("3", "0"):
        argv = ["data", "--make-inputs", str(inputs), "--batch-size", "4", "--num-samples", f"1,{samples}"]
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert f"--num-samples {samples}: must be 1 or more and divide --batch-size 4" in capsys.readouterr().err
    assert not inputs.exists()


def test_script_lists_the_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/benchmark.py"), "--help"], capture_output=True, text=True, check=True
    )
    assert all(command in result.stdout for command in ("model", "data", "keyframes", "train", "checkpoint"))


def test_keyframes_subcommand_has_a_row_per_interval(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two 2-second videos as downloaded, then encoded with a keyframe every 2, 1 and 0.25 s: the
    more keyframes, the larger the files; every row counts the decoding work of its clips."""
    sources = []
    spec = DemoSpec(height=48, width=64, fps=30, min_frames=60, max_frames=60)
    for label in range(2):
        sources.append(tmp_path / f"downloaded_{label}.mp4")
        write_video(str(sources[-1]), render_video(label, np.random.default_rng(label), spec), 30)
    out = tmp_path / "keyframes.json"
    argv = ["--json", str(out), "keyframes", "--seconds", "2,1,0.25", "--folder", str(tmp_path / "encoded")]
    argv += ["--clips", "2", "--warmup", "0", "--repeats", "1", "--source", *map(str, sources)]
    argv += ["DATA.SAMPLING_RATE", "2", "DATA.TRAIN_JITTER_SCALES", "[36, 44]", "DATA.TRAIN_CROP_SIZE", "32"]
    assert main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["keyframes"] for row in rows] == ["as downloaded", "every 2 s", "every 1 s", "every 0.25 s"]
    assert rows[0]["megabytes"] == sum(source.stat().st_size for source in sources) / 1e6  # copied as they are
    sizes = [row["megabytes"] for row in rows[1:]]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3  # strictly larger as the interval shrinks
    for row in rows:
        assert row["clips"] == 2 and row["clips_per_s_per_core"] == row["clips_per_s"] > 0
        assert row["packets_per_clip"] >= row["frames_per_clip"] >= 16
    printed = capsys.readouterr().out
    for row in rows:  # as it is measured, and in the table at the end
        assert printed.count(f"| {row['keyframes']} | {row['megabytes']:.3g} |") == 2
