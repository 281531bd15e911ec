"""Class names for printing predictions, from the label files users already have.

Three forms: a text file with one name per line (the class index is the line index), a JSON
object ``{name: id}`` (Something-Something V2's ``something-something-v2-labels.json``, whose ids
are strings, or PySlowFast's Kinetics class-name JSON), and the keyword ``kinetics400`` for the
Kinetics-400 list that ships with vov3d.
"""

from __future__ import annotations

import os
from typing import Optional

from vov3d.datasets.annotations import AnnotationError, read_ssv1_labels, read_ssv2_labels

KINETICS400 = "kinetics400"
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
