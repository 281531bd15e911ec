"""Class names from wherever a run knows them: DATA.CLASS_NAMES, the folder dataset, SSv1 / SSv2
label files, the shipped Kinetics-400 list; None when nothing names them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datasets.helpers import SSV2_TEMPLATES, make_ssv1, make_ssv2, make_video
from tests.helpers import small_cfg
from vov3d.config import ConfigError
from vov3d.datasets import AnnotationError
from vov3d.datasets.class_names import cfg_class_names, known_class_names


def test_folder_dataset_names(tmp_path: Path) -> None:
    for name in ("zebra", "Ant", "bee"):
        make_video(tmp_path / "train" / name / "a.mp4", 4)
    assert known_class_names("Folder", str(tmp_path), 3) == ["Ant", "bee", "zebra"]
    with pytest.raises(AnnotationError, match="3 class folders but the model has 4 classes"):
        known_class_names("folder", str(tmp_path), 4)
    assert known_class_names("folder", str(tmp_path / "elsewhere"), 3) is None


def test_ssv1_and_ssv2_label_files(tmp_path: Path) -> None:
    for name in ("ssv1", "ssv2"):
        (tmp_path / name).mkdir()
    make_ssv2(tmp_path / "ssv2", {}, frames=False)
    make_ssv1(tmp_path / "ssv1", {})
    assert known_class_names("ssv2", str(tmp_path / "ssv2"), 3) == SSV2_TEMPLATES
    assert known_class_names("ssv1", str(tmp_path / "ssv1"), 3) == SSV2_TEMPLATES
    assert known_class_names("ssv2", str(tmp_path / "ssv1"), 3) is None  # no labels JSON there
    with pytest.raises(AnnotationError, match="lists 3 classes but the model has 174"):
        known_class_names("ssv2", str(tmp_path / "ssv2"), 174)


def test_kinetics_400_only_for_400_classes(tmp_path: Path) -> None:
    names = known_class_names("kinetics", str(tmp_path), 400)
    assert len(names) == 400 and names[:2] == ["abseiling", "air drumming"]
    assert known_class_names("kinetics", str(tmp_path), 10) is None


def test_class_names_file_wins(tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    make_ssv1(tmp_path, {})
    cfg = small_cfg(tmp_path, tmp_path, dataset="ssv1")
    cfg.MODEL.NUM_CLASSES = 2
    cfg.DATA.CLASS_NAMES = str(tmp_path / "names.txt")
    assert cfg_class_names(cfg) == ["cat", "dog"]
    cfg.MODEL.NUM_CLASSES, cfg.DATA.CLASS_NAMES = 3, ""
    assert cfg_class_names(cfg, "test") == SSV2_TEMPLATES
    cfg.TEST.DATASET = "kinetics"
    assert cfg_class_names(cfg, "test") is None and cfg_class_names(cfg, "train") == SSV2_TEMPLATES
    cfg.DATA.CLASS_NAMES = str(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match=r"DATA.CLASS_NAMES = .*missing.txt.*no such file"):
        cfg_class_names(cfg)
    cfg.MODEL.NUM_CLASSES, cfg.DATA.CLASS_NAMES = 400, "kinetics400"
    assert len(cfg_class_names(cfg)) == 400


def test_kinetics_folder_names_its_classes(tmp_path: Path) -> None:
    """A Kinetics-format folder's classes.txt (folder_to_csv, make_demo_dataset) names the classes
    without DATA.CLASS_NAMES, before the Kinetics-400 list; a wrong count is an error, not ignored."""
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    assert known_class_names("kinetics", str(tmp_path), 2) == ["cat", "dog"]
    (tmp_path / "other.txt").write_text("ant\nbee\n")
    assert known_class_names("kinetics", str(tmp_path), 2, str(tmp_path / "other.txt")) == ["ant", "bee"]
    with pytest.raises(AnnotationError, match="classes.txt"):
        known_class_names("kinetics", str(tmp_path), 400)
