"""The README's "Fine-tune on your own videos" commands, run as written on generated clips: a
folder per class, a locally made "pretrained" checkpoint with another class count standing in for
the zoo's Kinetics-400 file, the tiny quick config and CPU-sized batches; predict must print the
folder names from the checkpoint."""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import CONFIGS, REPO
from tests.engine.conftest import SUBPROCESS_ENV
from vov3d.checkpoint import save_checkpoint
from vov3d.config import load_config
from vov3d.datasets.encode import write_video
from vov3d.engine.runtime import prepare_model
from vov3d.utils.run_layout import RunFolder

QUICK = str(CONFIGS / "quick" / "vov3d_tiny.yaml")
COLOURS = {"blue sky": (30, 40, 220), "green leaf": (30, 200, 40), "red ball": (220, 30, 30)}
PER_SPLIT = {"train": 2, "val": 1, "test": 1}


def readme_commands() -> list[list[str]]:
    """The commands of the section's code block, continuation lines joined."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Fine-tune on your own videos", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def replaced(tokens: list[str], values: dict[str, str]) -> list[str]:
    """``tokens`` with the value after each key (or option) of ``values`` replaced."""
    out = list(tokens)
    for i, token in enumerate(out[:-1]):
        if token in values:
            out[i + 1] = values[token]
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("my_clips")
    for split, count in PER_SPLIT.items():
        for name, colour in COLOURS.items():
            for i in range(count):
                frames = np.broadcast_to(np.array(colour, dtype=np.uint8), (16, 40, 48, 3)).copy()
                (root / split / name).mkdir(parents=True, exist_ok=True)
                write_video(str(root / split / name / f"{i}.mp4"), frames, 30)
    return root


def test_the_readme_fine_tunes_and_predicts_with_names(clips: Path, tmp_path: Path) -> None:
    run_net, predict = readme_commands()
    assert run_net[:2] == ["python", "tools/run_net.py"] and predict[:2] == ["python", "tools/predict.py"]
    pretrained_cfg = load_config([QUICK], ["MODEL.NUM_CLASSES", "8"])  # "Kinetics": another class count
    pretrained = tmp_path / "pretrained.pyth"
    save_checkpoint(str(pretrained), prepare_model(pretrained_cfg, torch.device("cpu"), train=True), cfg=pretrained_cfg)
    run_dir = tmp_path / "run"
    train = replaced(run_net, {
        "--cfg": QUICK, "OUTPUT_DIR": str(run_dir), "DATA.PATH_TO_DATA_DIR": str(clips),
        "MODEL.NUM_CLASSES": str(len(COLOURS)), "TRAIN.CHECKPOINT_FILE_PATH": str(pretrained), "NUM_GPUS": "0",
        "TRAIN.BATCH_SIZE": "3", "TEST.BATCH_SIZE": "6", "SOLVER.MAX_EPOCH": "2", "SOLVER.WARMUP_EPOCHS": "0.5",
        "TRAIN.FREEZE_BACKBONE_EPOCHS": "1",
    })  # fmt: skip
    result = subprocess.run([sys.executable, *train[1:]], cwd=REPO, env=SUBPROCESS_ENV, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names, run = sorted(COLOURS), RunFolder(str(run_dir))
    assert Path(run.class_names_path).read_text().splitlines() == names
    best = torch.load(run.best_path, weights_only=True)
    assert best["class_names"] == names and "val_top1_err" in best
    with open(run.per_class_path, newline="") as f:
        assert [row["name"] for row in csv.DictReader(f)] == names
    assert "testing the weights of " + run.best_path in result.stdout + result.stderr

    new_clips = str(clips / "test")
    command = [token.replace("output/my_clips", str(run_dir)) for token in predict]
    command = [new_clips if token == "new_clips/" else token for token in command]
    result = subprocess.run([sys.executable, *command[1:]], cwd=REPO, env=SUBPROCESS_ENV, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = [block for block in result.stdout.split("\n") if block.startswith("  ")]
    printed = {line.split("  ", 2)[2] for line in blocks}
    assert printed == set(names), result.stdout  # names from the checkpoint, no --labels given
    assert "--labels" not in predict
