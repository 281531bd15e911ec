"""The folder dataset (a folder per class) and tools/folder_to_csv.py: labels from sorted folder
names, the same clips as Kinetics over the CSVs the tool writes, and errors that say what to fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.datasets.helpers import frame_numbers, make_video
from tests.helpers import small_cfg
from vov3d.cli.folder_to_csv import main as folder_to_csv
from vov3d.config import ConfigError
from vov3d.datasets import AnnotationError, build_dataset
from vov3d.inference.predict import view_dataset

# split -> class -> videos (relative to the class folder); frame counts differ per video
LAYOUT = {
    "train": {"walk": ["a.mp4", "b.webm"], "Jump": ["x/c.mp4"], "run": ["d.mp4", "e.mkv"]},
    "val": {"walk": ["f.mp4"], "run": ["g.mp4"]},
    "test": {"Jump": ["h.mp4"], "run": ["i.mp4"]},
}
NAMES = ["Jump", "run", "walk"]  # sorted: upper case first


def make_folder_dataset(root: Path, layout: dict = LAYOUT) -> Path:
    count = 20
    for split, classes in layout.items():
        for name, videos in classes.items():
            for video in videos:
                make_video(root / split / name / video, count, fps=15, size=(48, 64))
                count += 4
    return root


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_folder_dataset(tmp_path_factory.mktemp("folder"))
    (root / "train" / "walk" / "notes.txt").write_text("not a video")
    (root / "train" / "walk" / ".hidden.mp4").write_text("skipped")
    return root


def folder_cfg(root: Path, num_classes: int = 3):
    return small_cfg(root, "", "folder", "MODEL.NUM_CLASSES", num_classes)


def test_labels_are_sorted_folder_names(folder_root: Path) -> None:
    cfg = folder_cfg(folder_root)
    train = build_dataset(cfg, "train")
    assert train.class_names == NAMES
    relative = [str(Path(p).relative_to(folder_root)) for p in train.paths]
    assert relative == [
        "train/Jump/x/c.mp4",
        "train/run/d.mp4",
        "train/run/e.mkv",
        "train/walk/a.mp4",
        "train/walk/b.webm",
    ]
    assert train.labels == [0, 1, 1, 2, 2]
    test = build_dataset(cfg, "test")
    assert test.labels == [0, 1] and test.class_names == NAMES
    assert len(test) == 2 * cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    frames, label, _, meta = train[4]
    assert frames.shape == (4, 32, 32, 3) and label == 2 and meta["video_index"] == 4


def test_same_clips_as_kinetics_over_the_written_csvs(folder_root: Path, tmp_path: Path, capsys) -> None:
    assert folder_to_csv([str(folder_root), "--output", str(tmp_path)]) == 0
    assert (tmp_path / "classes.txt").read_text().splitlines() == NAMES
    assert (tmp_path / "val.csv").read_text() == "val/run/g.mp4 1\nval/walk/f.mp4 2\n"
    hint = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"DATA.CLASS_NAMES {tmp_path / 'classes.txt'}" in hint and "MODEL.NUM_CLASSES 3" in hint
    folder = build_dataset(folder_cfg(folder_root), "test")
    kinetics_cfg = folder_cfg(tmp_path)
    kinetics_cfg.TRAIN.DATASET = kinetics_cfg.TEST.DATASET = "kinetics"
    kinetics_cfg.DATA.PATH_PREFIX = str(folder_root)
    kinetics = build_dataset(kinetics_cfg, "test")
    assert kinetics.paths == folder.paths and kinetics.labels == folder.labels
    for index in range(len(folder)):
        assert torch.equal(folder[index][0], kinetics[index][0])
    assert len(set(frame_numbers(folder[0][0]))) > 1  # real frames, not a blank clip


def test_tool_refuses_to_overwrite_without_force(folder_root: Path, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("mine\n")
    assert folder_to_csv([str(folder_root), "--output", str(tmp_path)]) == 2
    assert (tmp_path / "train.csv").read_text() == "mine\n"
    assert folder_to_csv([str(folder_root), "--output", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "train.csv").read_text().startswith("train/Jump/x/c.mp4 0\n")


def test_predict_builds_its_views_with_a_folder_config(folder_root: Path) -> None:
    cfg = folder_cfg(folder_root)
    video = str(folder_root / "test" / "run" / "i.mp4")
    views = view_dataset(cfg, [video])
    assert views.paths == [video] and len(views) == cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    assert torch.equal(views[0][0], build_dataset(cfg, "test")[6][0])  # i.mp4 is the second test video


def test_tool_with_only_a_train_folder(tmp_path: Path, capsys) -> None:
    make_video(tmp_path / "train" / "walk" / "a.mp4", 8)
    assert folder_to_csv([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["classes.txt", "train.csv"]
    assert (tmp_path / "train.csv").read_text() == "train/walk/a.mp4 0\n"
    assert "no val, test folder" in capsys.readouterr().out


def test_num_classes_mismatch_names_both_numbers(folder_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"MODEL.NUM_CLASSES = 5 .*has 5 classes but .*train has 3 class folders"):
        build_dataset(folder_cfg(folder_root, num_classes=5), "train")


def copy_of(folder_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(folder_root, root)
    return root


def test_empty_class_folder(folder_root: Path, tmp_path: Path) -> None:
    root = copy_of(folder_root, tmp_path)
    (root / "val" / "Jump").mkdir()
    (root / "val" / "Jump" / "readme.txt").write_text("no videos here")
    with pytest.raises(AnnotationError, match=r"val/Jump: class folder without videos"):
        build_dataset(folder_cfg(root), "val")


def test_class_missing_from_train(folder_root: Path, tmp_path: Path) -> None:
    root = copy_of(folder_root, tmp_path)
    make_video(root / "test" / "swim" / "s.mp4", 8)
    with pytest.raises(AnnotationError, match=r"classes \['swim'\] are not in .*train"):
        build_dataset(folder_cfg(root), "test")
    assert folder_to_csv([str(root), "--output", str(tmp_path / "csv")]) == 2
    assert not (tmp_path / "csv").exists()


def test_no_videos_at_all(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(AnnotationError, match=r"train: no class folders"):
        build_dataset(folder_cfg(tmp_path), "train")
    make_video(tmp_path / "train" / "walk" / "a.mp4", 8)
    (tmp_path / "val").mkdir()
    with pytest.raises(AnnotationError, match=r"val: no videos"):
        build_dataset(folder_cfg(tmp_path, num_classes=1), "val")
    with pytest.raises(AnnotationError, match=r"test: no such folder"):
        build_dataset(folder_cfg(tmp_path, num_classes=1), "test")


def test_video_outside_a_class_folder(tmp_path: Path) -> None:
    make_video(tmp_path / "train" / "walk" / "a.mp4", 8)
    make_video(tmp_path / "train" / "stray.mp4", 8)
    with pytest.raises(AnnotationError, match=r"inside a class folder .*'stray.mp4'"):
        build_dataset(folder_cfg(tmp_path, num_classes=1), "train")


def test_missing_data_dir_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"DATA.PATH_TO_DATA_DIR = .*not a folder"):
        build_dataset(folder_cfg(tmp_path / "nowhere"), "train")


def test_real_videos_in_class_folders(real_videos: Path, tmp_path: Path) -> None:
    files = {
        "arm wrestling": "kinetics400_arm_wrestling_340x256_28fps.mp4",
        "cleaning pool": "kinetics_style_340x256_30fps.mp4",
        "ucf": "ucf101_style_xvid_mp3.avi",
    }
    for name, file in files.items():
        for split in ("train", "test"):
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / file).symlink_to(real_videos / file)
    cfg = folder_cfg(tmp_path)
    train = build_dataset(cfg, "train")
    assert train.class_names == sorted(files) and train.labels == [0, 1, 2]
    for index in range(3):
        frames, label, _, _ = train[index]
        assert frames.shape == (4, 32, 32, 3) and label == index and frames.float().std() > 0
