"""A folder per class: ``PATH_TO_DATA_DIR/{train,val,test}/<class name>/<video>``, for fine-tuning
on one's own clips without writing label files. Clips are sampled and transformed as for Kinetics.

Class names are the folder names of ``train``, sorted (Python string order), so the class index of
a name is the same on every machine; val and test may lack classes but not add any.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from vov3d.config import CfgNode, cfg_error

from .annotations import AnnotationError
from .build import DATASET_REGISTRY
from .kinetics import Kinetics
from .video_files import VIDEO_SUFFIXES, is_video_file

SPLIT_FOLDERS = ("train", "val", "test")
LAYOUT = "<PATH_TO_DATA_DIR>/{train,val,test}/<class name>/<video>"


def _visible(name: str) -> bool:
    return not name.startswith(".")


def split_folder(root: str, split: str) -> str:
    """``root/split``; raises AnnotationError naming the layout when it is not a folder."""
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise AnnotationError(f"{folder}: no such folder; the folder dataset reads {LAYOUT}")
    return folder


def folder_class_names(root: str) -> list[str]:
    """The class names of the dataset in ``root``: the sub-folders of ``root/train``, sorted."""
    train = split_folder(root, "train")
    names = sorted(name for name in os.listdir(train) if _visible(name) and os.path.isdir(os.path.join(train, name)))
    if not names:
        raise AnnotationError(f"{train}: no class folders; the folder dataset reads {LAYOUT}")
    return names


def _videos_under(folder: str) -> list[str]:
    """Video files anywhere under ``folder``, sorted by path; hidden files and folders are skipped."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if _visible(d)]
        found += [os.path.join(parent, name) for name in files if is_video_file(name)]
    return sorted(found)


def scan_split(root: str, split: str, class_names: list[str]) -> tuple[list[str], list[int]]:
    """Video paths and labels (indices into ``class_names``) of ``root/split``.

    Raises AnnotationError for a class folder without videos, a class that ``class_names`` (the
    train classes) lacks, a video outside any class folder, or a split without any video.
    """
    folder = split_folder(root, split)
    index = {name: i for i, name in enumerate(class_names)}
    entries = sorted(name for name in os.listdir(folder) if _visible(name))
    loose = [name for name in entries if is_video_file(name)]
    if loose:
        raise AnnotationError(f"{folder}: videos must be inside a class folder ({LAYOUT}), found e.g. {loose[0]!r}")
    classes = [name for name in entries if os.path.isdir(os.path.join(folder, name))]
    unknown = [name for name in classes if name not in index]
    if unknown:
        raise AnnotationError(
            f"{folder}: classes {unknown[:5]} are not in {os.path.join(root, 'train')} (the {len(class_names)} "
            "training classes); every val/test class needs training videos"
        )
    paths, labels = [], []
    for name in classes:
        videos = _videos_under(os.path.join(folder, name))
        if not videos:
            raise AnnotationError(
                f"{os.path.join(folder, name)}: class folder without videos (suffixes read: "
                f"{', '.join(VIDEO_SUFFIXES)}); add videos or remove the folder"
            )
        paths += videos
        labels += [index[name]] * len(videos)
    if not paths:
        raise AnnotationError(f"{folder}: no videos; the folder dataset reads {LAYOUT}")
    return paths, labels


@DATASET_REGISTRY.register("folder")
class VideoFolder(Kinetics):
    """Kinetics sampling over a folder per class; ``class_names[label]`` names each label (None
    when built over other files, as ``predict`` does)."""

    def __init__(
        self, paths: list[str], labels: list[int], split: str, class_names: Optional[list[str]] = None, **kwargs: Any
    ) -> None:
        super().__init__(paths, labels, split, **kwargs)
        self.class_names = list(class_names) if class_names is not None else None

    @classmethod
    def split_videos(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        root = cfg.DATA.PATH_TO_DATA_DIR
        if not os.path.isdir(root):
            raise cfg_error(cfg, "DATA.PATH_TO_DATA_DIR", f"not a folder; the folder dataset reads {LAYOUT}")
        names = folder_class_names(root)
        if len(names) != cfg.MODEL.NUM_CLASSES:
            raise cfg_error(
                cfg,
                "MODEL.NUM_CLASSES",
                f"the model has {cfg.MODEL.NUM_CLASSES} classes but {os.path.join(root, 'train')} has "
                f"{len(names)} class folders; set MODEL.NUM_CLASSES {len(names)}",
            )
        paths, labels = scan_split(root, split, names)
        return dict(paths=paths, labels=labels, class_names=names)
