"""The layout of a run folder (OUTPUT_DIR): the one place that spells its file names, and the
reader of its ``json_stats.log``. Training, testing, the tools and the tests ask ``RunFolder``
for a path instead of joining names themselves::

    OUTPUT_DIR/
      config.yaml                     the resolved config
      stdout.log, stdout_rank{r}.log  the log of rank 0 and, with LOG_ALL_RANKS, of the others
      json_stats.log                  one ``json_stats: {...}`` line per logged statistic
      classes.txt                     the class names, line i naming class i
      checkpoints/checkpoint_epoch_{epochs done:05d}.pyth, checkpoints/best.pyth
      checkpoints/checkpoint_epoch_{epochs done:05d}_iter_{iterations done:06d}.pyth   mid-epoch
      json_stats_discarded.log        lines of a killed run's lost part, moved aside on resume
      per_class.csv, confusion_matrix.csv, confusion_matrix.png   the multi-view test's report
      runs-{dataset}/                 TensorBoard events (unless TENSORBOARD.LOG_DIR says otherwise)

Only the standard library is imported, so that any module (logging included) and the
command-line tools can use it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Optional

_CHECKPOINT = re.compile(r"^checkpoint_epoch_(\d{5,})(?:_iter_(\d{6,}))?\.pyth$")
# How vov3d.utils.logging writes a statistic; a log line may carry a prefix before it.
STATS_MARKER = "json_stats: "


@dataclass(frozen=True)
class RunFolder:
    """The paths of the run folder ``root``; nothing is created or read until asked."""

    root: str

    @property
    def checkpoints_dir(self) -> str:
        return os.path.join(self.root, "checkpoints")

    def checkpoint_path(self, epochs_done: int, iterations: int = 0) -> str:
        """The training checkpoint written after ``epochs_done`` epochs (its ``epoch`` field is
        ``epochs_done - 1``, PySlowFast's 0-based index) and, for a mid-epoch one, ``iterations``
        more of the next epoch."""
        mid_epoch = f"_iter_{iterations:06d}" if iterations else ""
        return os.path.join(self.checkpoints_dir, f"checkpoint_epoch_{epochs_done:05d}{mid_epoch}.pyth")

    def checkpoints(self) -> list[str]:
        """The training checkpoints present, epoch-end and mid-epoch ones alike, oldest first (by
        the training they hold); the temporary files of interrupted writes and ``best.pyth`` are
        not listed."""
        if not os.path.isdir(self.checkpoints_dir):
            return []
        found = [
            (position, name) for name in os.listdir(self.checkpoints_dir) if (position := checkpoint_position(name))
        ]
        return [os.path.join(self.checkpoints_dir, name) for _, name in sorted(found)]

    @property
    def best_path(self) -> str:
        """The weights of the lowest validation top-1 error (TRAIN.KEEP_BEST_CHECKPOINT)."""
        return os.path.join(self.checkpoints_dir, "best.pyth")

    @property
    def class_names_path(self) -> str:
        return os.path.join(self.root, "classes.txt")

    @property
    def config_path(self) -> str:
        return os.path.join(self.root, "config.yaml")

    def log_path(self, rank: int = 0) -> str:
        return os.path.join(self.root, "stdout.log" if rank == 0 else f"stdout_rank{rank}.log")

    @property
    def stats_path(self) -> str:
        return os.path.join(self.root, "json_stats.log")

    @property
    def discarded_stats_path(self) -> str:
        return os.path.join(self.root, "json_stats_discarded.log")

    @property
    def per_class_path(self) -> str:
        return os.path.join(self.root, "per_class.csv")

    def confusion_matrix_path(self, extension: str) -> str:
        """The test's confusion matrix as ``csv`` (counts) or ``png`` (the heat map)."""
        return os.path.join(self.root, f"confusion_matrix.{extension}")

    def tensorboard_dir(self, dataset: str) -> str:
        """The default TENSORBOARD.LOG_DIR of a run on ``dataset``."""
        return os.path.join(self.root, f"runs-{dataset}")

    def read_stats(self, kind: Optional[str] = None) -> list[dict[str, Any]]:
        """The statistics of ``json_stats.log`` in the order they were written, only those whose
        ``_type`` is ``kind`` (``train_epoch``, ``val_epoch``, ``test_final``, ...) when given;
        empty when the file does not exist yet."""
        if not os.path.isfile(self.stats_path):
            return []
        with open(self.stats_path, encoding="utf-8") as f:
            lines = [(number, line.strip()) for number, line in enumerate(f, 1) if line.strip()]
        stats = []
        for number, line in lines:
            entry = parse_stats(line)
            if entry is None:
                raise ValueError(f"{self.stats_path}:{number}: not a statistic ({STATS_MARKER}{{...}}): {line!r}")
            if kind is None or entry.get("_type") == kind:
                stats.append(entry)
        return stats


def checkpoint_position(path: str) -> Optional[tuple[int, int]]:
    """(epochs done, iterations of the next epoch done) of a training checkpoint's file name;
    None for another file."""
    match = _CHECKPOINT.match(os.path.basename(path))
    return None if match is None else (int(match.group(1)), int(match.group(2) or 0))


def parse_stats(line: str) -> Optional[dict[str, Any]]:
    """The statistic a ``json_stats: {...}`` line holds (after any log prefix); None for another line."""
    if STATS_MARKER not in line:
        return None
    try:
        entry = json.loads(line.split(STATS_MARKER, 1)[1])
    except json.JSONDecodeError:  # a line cut short, say
        return None
    return entry if isinstance(entry, dict) else None
