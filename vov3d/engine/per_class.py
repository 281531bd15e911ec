"""Per-class results of a test: accuracy, video count and the class each is most often taken for,
as a log table and a CSV, so a weak class and what it is confused with are found by name."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch

CSV_COLUMNS = ("index", "name", "videos", "correct", "top1_acc", "most_confused_with", "confused_videos")


@dataclass(frozen=True)
class ClassResult:
    """One class: ``accuracy`` in % (None without videos); ``confused_with`` is the name of the
    wrong prediction made most often for it (None when there is none), ``confused`` its count."""

    index: int
    name: str
    videos: int
    correct: int
    accuracy: Optional[float]
    confused_with: Optional[str]
    confused: int


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(classes, classes) counts; rows are labels, columns predicted classes."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_results(confusion: torch.Tensor, class_names: Optional[Sequence[str]] = None) -> list[ClassResult]:
    """One ClassResult per row of ``confusion`` (rows labels, columns predictions), in class order.
    Without ``class_names`` classes are named by their index."""
    classes = confusion.shape[0]
    if class_names is not None and len(class_names) != classes:
        raise ValueError(f"{len(class_names)} class names for a {classes}-class confusion matrix")
    names = list(class_names) if class_names is not None else [str(i) for i in range(classes)]
    wrong = confusion.clone()
    wrong.fill_diagonal_(0)
    results = []
    for index in range(classes):
        videos, correct = int(confusion[index].sum()), int(confusion[index, index])
        other = int(wrong[index].argmax())  # the first of equal counts
        confused = int(wrong[index, other])
        results.append(
            ClassResult(
                index=index,
                name=names[index],
                videos=videos,
                correct=correct,
                accuracy=100.0 * correct / videos if videos else None,
                confused_with=names[other] if confused else None,
                confused=confused,
            )
        )
    return results


def per_class_table(results: Sequence[ClassResult]) -> str:
    """The results as aligned text lines for the log."""
    width = max([len("class")] + [len(r.name) for r in results])
    lines = [f"{'class':<{width}}  videos  top-1 %  most confused with (videos)"]
    for r in results:
        accuracy = f"{r.accuracy:7.1f}" if r.accuracy is not None else f"{'-':>7}"
        confused = f"{r.confused_with} ({r.confused})" if r.confused_with is not None else "-"
        lines.append(f"{r.name:<{width}}  {r.videos:>6}  {accuracy}  {confused}")
    return "\n".join(lines)


def write_per_class_csv(results: Sequence[ClassResult], path: str) -> None:
    """The results as CSV with a header (CSV_COLUMNS); empty cells where a value does not exist."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            accuracy = f"{r.accuracy:.2f}" if r.accuracy is not None else ""
            confused_with = r.confused_with if r.confused_with is not None else ""
            writer.writerow([r.index, r.name, r.videos, r.correct, accuracy, confused_with, r.confused])
