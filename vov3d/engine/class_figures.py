"""The per-class figures of validation and the test in TensorBoard (TENSORBOARD.CONFUSION_MATRIX and
TENSORBOARD.HISTOGRAM, PySlowFast's keys): under which names, for which classes, and drawn from the
confusion matrix, whose rows already hold what each class's videos were predicted as."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch

from vov3d.config import CfgNode, cfg_error
from vov3d.datasets.class_names import read_class_names
from vov3d.utils.tensorboard import MAX_NAMED_CLASSES, labelled_heat_map
from vov3d.visualization.figures import bar_chart


def figure_class_names(cfg: CfgNode, known: Optional[Sequence[str]]) -> list[str]:
    """TENSORBOARD.CLASS_NAMES_PATH's names when set, else ``known`` (the run's or the tested
    checkpoint's), else the class indices."""
    path = cfg.TENSORBOARD.CLASS_NAMES_PATH
    if path:
        if not os.path.isfile(path):
            raise cfg_error(cfg, "TENSORBOARD.CLASS_NAMES_PATH", "no such file")
        return read_class_names(path, cfg.MODEL.NUM_CLASSES)
    return list(known) if known is not None else [str(i) for i in range(cfg.MODEL.NUM_CLASSES)]


def class_subset(cfg: CfgNode, key: str, names: Sequence[str]) -> Optional[list[int]]:
    """The classes listed in the file of ``key`` (a SUBSET_PATH: one class name per line, blank
    lines skipped), in its order, once each; None when the key is empty."""
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    path = node
    if not path:
        return None
    if not os.path.isfile(path):
        raise cfg_error(cfg, key, "no such file; give a text file with one class name per line")
    index = {name: i for i, name in enumerate(names)}
    subset: list[int] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            name = line.strip()
            if not name:
                continue
            if name not in index:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else " (see TENSORBOARD.CLASS_NAMES_PATH)"
                raise cfg_error(cfg, key, f"{path}:{number}: no class is named {name!r}{hint}")
            if index[name] not in subset:
                subset.append(index[name])
    if not subset:
        raise cfg_error(cfg, key, f"{path} names no class")
    return subset


def most_confused(confusion: torch.Tensor, count: int) -> list[int]:
    """The ``count`` classes with the most wrong predictions in their row and column (their videos
    taken for another class, and other videos taken for them), in class order; equal counts go
    to the lower index."""
    wrong = confusion.clone()
    wrong.fill_diagonal_(0)
    order = torch.argsort(wrong.sum(dim=0) + wrong.sum(dim=1), descending=True, stable=True)
    return sorted(order[:count].tolist())


def subset_heat_map(confusion: torch.Tensor, subset: Sequence[int], names: Sequence[str]) -> torch.Tensor:
    """The rows and columns of ``subset`` of the confusion matrix, each row named; a row's shades
    are shares of all its videos, those predicted outside the subset included."""
    rows = torch.tensor(list(subset))
    return labelled_heat_map(
        confusion[rows][:, rows], [names[i] for i in subset], indices=subset, totals=confusion[rows].sum(dim=1)
    )


def prediction_histogram(
    confusion: torch.Tensor, true_class: int, names: Sequence[str], topk: int
) -> Optional[torch.Tensor]:
    """A bar chart of the ``topk`` classes the videos of ``true_class`` were most often predicted
    as (counts; the right class in green); None when the class has no videos."""
    row = confusion[true_class]
    if not row.any():
        return None
    order = torch.argsort(row, descending=True, stable=True)[:topk]
    shown = [int(i) for i in order if row[i] > 0]
    videos = int(row.sum())
    title = f"{true_class} {names[true_class]}: {videos} video{'s' if videos > 1 else ''}, predicted as"
    labels = [f"{i} {names[i]}" for i in shown]
    highlight = shown.index(true_class) if true_class in shown else None
    return bar_chart([int(row[i]) for i in shown], labels, title, highlight)


@dataclass(frozen=True)
class ClassFigures:
    """Which per-class figures a run writes, read from the cfg once (subset files included, so a
    wrong class name stops the run before it trains or tests)."""

    names: list[str]  # every class's, for every figure of the run
    confusion: bool  # CONFUSION_MATRIX.ENABLE
    confusion_subset: Optional[list[int]]  # CONFUSION_MATRIX.SUBSET_PATH's classes
    histogram: bool  # HISTOGRAM.ENABLE
    histogram_subset: Optional[list[int]]  # HISTOGRAM.SUBSET_PATH's classes
    topk: int  # HISTOGRAM.TOPK

    @classmethod
    def from_cfg(cls, cfg: CfgNode, known_names: Optional[Sequence[str]]) -> ClassFigures:
        """The figures TENSORBOARD asks for, named as ``figure_class_names`` says."""
        names = figure_class_names(cfg, known_names)
        board = cfg.TENSORBOARD
        confusion = board.ENABLE and board.CONFUSION_MATRIX.ENABLE
        histogram = board.ENABLE and board.HISTOGRAM.ENABLE
        if histogram and board.HISTOGRAM.TOPK < 1:
            raise cfg_error(cfg, "TENSORBOARD.HISTOGRAM.TOPK", "must be 1 or more")

        def subset(section: str, enabled: bool) -> Optional[list[int]]:
            return class_subset(cfg, f"TENSORBOARD.{section}.SUBSET_PATH", names) if enabled else None

        return cls(
            names=names,
            confusion=confusion,
            confusion_subset=subset("CONFUSION_MATRIX", confusion),
            histogram=histogram,
            histogram_subset=subset("HISTOGRAM", histogram),
            topk=board.HISTOGRAM.TOPK,
        )

    def named_subset(self, confusion: torch.Tensor) -> Optional[list[int]]:
        """The classes of the named confusion figure: SUBSET_PATH's, else beyond MAX_NAMED_CLASSES
        the most confused; None when the whole matrix is named already."""
        if self.confusion_subset is not None:
            return self.confusion_subset
        return most_confused(confusion, MAX_NAMED_CLASSES) if len(self.names) > MAX_NAMED_CLASSES else None

    def images(self, confusion: torch.Tensor, full_matrix: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, uint8 H x W x 3 image) of each enabled figure of ``confusion``: the whole matrix
        (unless not ``full_matrix``: the test writes its own) and the named subset as
        confusion_matrix and confusion_matrix_subset, and one histogram per true class with videos
        as top{k}_predictions/{class}_{name}."""
        if self.confusion:
            if full_matrix:
                yield "confusion_matrix", labelled_heat_map(confusion, self.names)
            subset = self.named_subset(confusion)
            if subset is not None:
                yield "confusion_matrix_subset", subset_heat_map(confusion, subset, self.names)
        if self.histogram:
            for true_class in self.histogram_subset or range(len(self.names)):
                image = prediction_histogram(confusion, true_class, self.names, self.topk)
                if image is not None:
                    yield f"top{self.topk}_predictions/{true_class}_{self.names[true_class]}", image

    def write(self, writer: Any, split: str, confusion: torch.Tensor, step: int = 0, full_matrix: bool = True) -> None:
        """The ``images`` of ``confusion`` to ``writer`` as ``split/{name}`` at ``step``."""
        for name, image in self.images(confusion, full_matrix):
            writer.add_image(f"{split}/{name}", image, step, dataformats="HWC")
