"""Each config writes to its own folder unless a file or an override names one, so a second run
never auto-resumes the first one's checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import CONFIGS
from vov3d.config import key_source, load_config


def test_paper_configs_of_two_datasets_get_different_folders() -> None:
    ssv2 = load_config([str(CONFIGS / "SSv2" / "vov3d" / "vov3d_M_F16.yaml")])
    ssv1 = load_config([str(CONFIGS / "SSv1" / "vov3d" / "vov3d_M_F16.yaml")])
    assert ssv2.OUTPUT_DIR == os.path.join("output", "SSv2", "vov3d", "vov3d_M_F16")
    assert ssv1.OUTPUT_DIR == os.path.join("output", "SSv1", "vov3d", "vov3d_M_F16")
    assert "the default for" in key_source(ssv2, "OUTPUT_DIR") and "vov3d_M_F16.yaml" in key_source(ssv2, "OUTPUT_DIR")


def test_relative_and_absolute_paths_name_the_same_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CONFIGS.parent)
    relative = load_config(["configs/quick/vov3d_tiny.yaml"]).OUTPUT_DIR
    assert relative == load_config([str(CONFIGS / "quick" / "vov3d_tiny.yaml")]).OUTPUT_DIR
    assert relative == os.path.join("output", "quick", "vov3d_tiny")
    assert load_config(["configs/quick/x3d_tiny.yaml"]).OUTPUT_DIR != relative


def test_a_config_outside_configs_is_named_by_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_run.yaml"
    path.write_text(f"_BASE_: {CONFIGS / 'quick' / 'vov3d_tiny.yaml'}\n")
    assert load_config([str(path)]).OUTPUT_DIR == os.path.join("output", "my_run")


def test_a_file_or_an_override_that_sets_it_wins(tmp_path: Path) -> None:
    quickstart = str(CONFIGS / "quickstart" / "vov3d_motion.yaml")
    assert load_config([quickstart]).OUTPUT_DIR == "./output/quickstart"  # the file's own
    cfg = load_config([str(CONFIGS / "quick" / "vov3d_tiny.yaml")], ["OUTPUT_DIR", str(tmp_path)])
    assert (cfg.OUTPUT_DIR, key_source(cfg, "OUTPUT_DIR")) == (str(tmp_path), "the command line")


def test_no_file_keeps_the_plain_default() -> None:
    assert load_config([]).OUTPUT_DIR == "./output"
