"""``folder_to_csv``: Kinetics-format ``{train,val,test}.csv`` and ``classes.txt`` from a folder per
class, for those who want label files (to edit, or to read with ``TRAIN.DATASET kinetics``)::

    python tools/folder_to_csv.py my_clips            # my_clips/{train,val,test}/<class>/<video>

The CSV paths are relative to the folder (``DATA.PATH_PREFIX``); the labels and ``classes.txt``
are the folder dataset's, so both datasets see the same videos with the same labels.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from vov3d.datasets.annotations import AnnotationError
from vov3d.datasets.class_names import KINETICS_CLASSES_FILE
from vov3d.datasets.folder import LAYOUT, SPLIT_FOLDERS, folder_class_names, scan_split


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="folder_to_csv.py",
        description=f"Write Kinetics-format CSVs and a class-name file from {LAYOUT}.",
    )
    parser.add_argument("root", help="the folder holding train/ (and val/, test/)")
    parser.add_argument("--output", default=None, metavar="DIR", help="where to write the files (default: root)")
    parser.add_argument("--separator", default=" ", help="between path and label (DATA.PATH_LABEL_SEPARATOR)")
    parser.add_argument("--force", action="store_true", help="overwrite existing CSV and class-name files")
    return parser


def csv_lines(root: str, split: str, class_names: list[str], separator: str) -> list[str]:
    """``path<separator>label`` lines of ``root/split``, paths relative to ``root``."""
    paths, labels = scan_split(root, split, class_names)
    lines = []
    for path, label in zip(paths, labels):
        relative = os.path.relpath(path, root)
        if "\n" in relative:
            raise AnnotationError(f"{path}: a path with a line break cannot go into a CSV line")
        lines.append(f"{relative}{separator}{label}\n")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    output = args.output or args.root
    try:
        names = folder_class_names(args.root)
        splits = [s for s in SPLIT_FOLDERS if os.path.isdir(os.path.join(args.root, s))]
        files = {os.path.join(output, f"{s}.csv"): csv_lines(args.root, s, names, args.separator) for s in splits}
    except AnnotationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files[os.path.join(output, KINETICS_CLASSES_FILE)] = [f"{name}\n" for name in names]
    existing = [path for path in files if os.path.exists(path)]
    if existing and not args.force:
        print(f"error: {', '.join(existing)} exist; pass --force to overwrite", file=sys.stderr)
        return 2
    os.makedirs(output, exist_ok=True)
    for path, lines in files.items():
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(lines)
    counts = ", ".join(f"{s} {len(files[os.path.join(output, f'{s}.csv')])}" for s in splits)
    print(f"wrote {len(files)} files to {output}: {len(names)} classes; videos: {counts}")
    missing = [s for s in SPLIT_FOLDERS if s not in splits]
    if missing:
        print(f"note: no {', '.join(missing)} folder, so no CSV for it (TRAIN.DATASET kinetics needs all three)")
    print(
        f"read them with: TRAIN.DATASET kinetics TEST.DATASET kinetics DATA.PATH_TO_DATA_DIR {output} "
        f"DATA.PATH_PREFIX {args.root} MODEL.NUM_CLASSES {len(names)} "
        f"DATA.CLASS_NAMES {os.path.join(output, KINETICS_CLASSES_FILE)}"
    )
    return 0
