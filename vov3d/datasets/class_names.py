"""Class names: read from the label files users already have, and found for a run wherever they
are known, so they can travel with the checkpoint.

Label files take three forms: a text file with one name per line (the class index is the line
index), a JSON object ``{name: id}`` (Something-Something V2's labels JSON, whose ids are strings,
or PySlowFast's Kinetics class-name JSON), and the keyword ``kinetics400`` for the Kinetics-400
list that ships with vov3d.

A run's names come, in order, from the DATA.CLASS_NAMES file (or ``kinetics400``); else the
dataset's own: the class folders of the folder dataset, SSv2's labels JSON, SSv1's category list,
and the shipped Kinetics-400 list when a Kinetics model has 400 classes. None when nothing names
them.
"""

from __future__ import annotations

import os
from typing import Optional

from vov3d.config import CfgNode, cfg_error

from .annotations import AnnotationError, read_ssv1_labels, read_ssv2_labels
from .folder import folder_class_names
from .ssv import SSV1_LABELS, SSV2_LABELS

KINETICS400 = "kinetics400"
# Beside a Kinetics-format folder's CSVs, the class names in label order (as folder_to_csv and
# make_demo_dataset write them): read without DATA.CLASS_NAMES.
KINETICS_CLASSES_FILE = "classes.txt"
KINETICS400_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "kinetics400_classes.txt")


def label_file(spec: str) -> str:
    """The file that ``spec`` names: the shipped list for ``kinetics400``, else ``spec`` itself."""
    return KINETICS400_FILE if spec == KINETICS400 else spec


def read_class_names(spec: str, num_classes: Optional[int] = None) -> list[str]:
    """The class names of ``spec`` in class-index order.

    Raises AnnotationError when the file is malformed, when its ids are not exactly
    0 .. n-1, or when n differs from ``num_classes`` (a list for another dataset would
    silently put wrong names on the predictions).
    """
    path = label_file(spec)
    if not os.path.isfile(path):
        raise AnnotationError(f"{path}: label file not found (or use --labels {KINETICS400})")
    # The SSv1 label file is the plain one-name-per-line form; the SSv2 one is the JSON form.
    ids = read_ssv2_labels(path) if path.lower().endswith(".json") else read_ssv1_labels(path)
    names = {index: name for name, index in ids.items()}
    if sorted(names) != list(range(len(ids))):
        missing = sorted(set(range(len(ids))) - set(names))
        raise AnnotationError(
            f"{path}: class ids must be 0 .. {len(ids) - 1}, each once; "
            f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    if num_classes is not None and len(names) != num_classes:
        raise AnnotationError(f"{path}: lists {len(names)} classes but the model has {num_classes} (MODEL.NUM_CLASSES)")
    return [names[index] for index in range(len(names))]


DATASET_LABEL_FILES = {"ssv1": SSV1_LABELS, "ssv2": SSV2_LABELS}
KINETICS400_CLASSES = 400


def known_class_names(dataset: str, data_dir: str, num_classes: int, names_file: str = "") -> Optional[list[str]]:
    """Class names in class-index order, or None. ``names_file`` (DATA.CLASS_NAMES) wins over
    the dataset's own names (for Kinetics: ``classes.txt`` beside the CSVs, else the Kinetics-400
    list for 400 classes); a dataset's label file that is not there (say, predicting on another
    machine) gives None. Raises AnnotationError when a list has another length than
    ``num_classes`` or is malformed."""
    if names_file:
        return read_class_names(names_file, num_classes)
    dataset = dataset.lower()
    if dataset == "folder":
        if not os.path.isdir(os.path.join(data_dir, "train")):
            return None
        names = folder_class_names(data_dir)
        if len(names) != num_classes:
            raise AnnotationError(
                f"{os.path.join(data_dir, 'train')}: {len(names)} class folders but the model has "
                f"{num_classes} classes (MODEL.NUM_CLASSES)"
            )
        return names
    if dataset in DATASET_LABEL_FILES:
        path = os.path.join(data_dir, DATASET_LABEL_FILES[dataset])
        return read_class_names(path, num_classes) if os.path.isfile(path) else None
    if dataset == "kinetics" and os.path.isfile(os.path.join(data_dir, KINETICS_CLASSES_FILE)):
        return read_class_names(os.path.join(data_dir, KINETICS_CLASSES_FILE), num_classes)
    if dataset == "kinetics" and num_classes == KINETICS400_CLASSES:
        return read_class_names(KINETICS400, num_classes)
    return None


def cfg_class_names(cfg: CfgNode, split: str = "train") -> Optional[list[str]]:
    """``known_class_names`` for the dataset of ``split`` (TEST.DATASET for test, else
    TRAIN.DATASET); a DATA.CLASS_NAMES file that does not exist is an error naming the key."""
    names_file = cfg.DATA.CLASS_NAMES
    if names_file and not os.path.isfile(label_file(names_file)):
        raise cfg_error(cfg, "DATA.CLASS_NAMES", f"no such file; give a file or {KINETICS400}")
    dataset = cfg.TEST.DATASET if split == "test" else cfg.TRAIN.DATASET
    return known_class_names(dataset, cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES, names_file)
