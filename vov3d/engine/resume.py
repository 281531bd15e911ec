"""Where a resumed run goes on (``resume_point``): the iteration of its first epoch and that
epoch's meters, after checking that a mid-epoch checkpoint belongs to this train split, and its
json_stats log brought back to the checkpoint: a resumed run moves the lines a killed run wrote
after its checkpoint (``stats_lines`` of them were written before) to json_stats_discarded.log,
since it writes them again, so the log reads as the log of an uninterrupted run."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Optional

from vov3d.checkpoint import CheckpointError
from vov3d.config import CfgNode
from vov3d.utils.atomic import atomic_path
from vov3d.utils.distributed import broadcast_object, is_main_process
from vov3d.utils.run_layout import RunFolder, parse_stats

logger = logging.getLogger(__name__)

# The json_stats lines a resumed run writes again; others after its checkpoint (a test's) stay.
REWRITTEN_STATS = ("train_iter", "train_epoch", "val_epoch")


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run goes on: ``iteration`` iterations into its first epoch with that
    epoch's meters and counts (``epoch_state``), after validating the epoch before it first when
    ``validate_first`` (the run stopped before its validation was logged)."""

    iteration: int = 0
    epoch_state: Optional[dict[str, Any]] = None
    validate_first: bool = False


def split_identity(dataset: Any) -> dict[str, Any]:
    """What tells one train split from another: its clip count and a digest of its file names and
    labels (names, not paths, so that data copied elsewhere, e.g. to a node's local disk, is the
    same split). A mid-epoch checkpoint resumes only on the same split: the epoch's order is a
    permutation of its clips."""
    names = getattr(dataset, "paths", None) or []
    labels = getattr(dataset, "labels", None) or []
    listing = "".join(f"{os.path.basename(str(name))} {label}\n" for name, label in zip(names, labels))
    return {"clips": len(dataset), "sha1": hashlib.sha1(listing.encode()).hexdigest()}


def resume_point(
    cfg: CfgNode, checkpoint: dict[str, Any], epoch_iters: int, train_split: dict[str, Any], max_epoch: int
) -> ResumePoint:
    """The ResumePoint of the checkpoint of OUTPUT_DIR that the run resumed from, for a run of
    ``max_epoch`` epochs (SOLVER.MAX_EPOCH, or multigrid's rescaled count) whose resumed epoch
    has ``epoch_iters`` iterations over ``train_split`` (``split_identity``); a mid-epoch
    checkpoint of another epoch length or split is refused. The json_stats lines written after it
    are moved aside (``trim_stats_log``) on rank 0, which tells the others whether to validate
    first."""
    iteration = int(checkpoint.get("iteration") or 0)
    theirs = (checkpoint.get("epoch_iters"), checkpoint.get("train_split"))
    if iteration and theirs != (epoch_iters, train_split):
        path = RunFolder(cfg.OUTPUT_DIR).checkpoint_path(checkpoint["epoch"] + 1, iteration)
        raise CheckpointError(
            f"checkpoint {path} stopped at iteration {iteration} of an epoch of {theirs[0]} iterations over the "
            f"train split {theirs[1]}, but this run's epochs have {epoch_iters} over {train_split}: the train split "
            f"changed, so the rest of that epoch is not the same clips; resume from an epoch checkpoint (remove "
            f"{path}) or give this run another OUTPUT_DIR"
        )
    finished = checkpoint["epoch"] + 1 >= max_epoch and not iteration  # its later lines are the test's
    logged = trim_stats_log(cfg.OUTPUT_DIR, checkpoint, max_epoch, move=not finished) if is_main_process() else False
    validate_first = bool(checkpoint.get("validate")) and not broadcast_object(logged)
    return ResumePoint(iteration, checkpoint.get("epoch_state") if iteration else None, validate_first)


def trim_stats_log(output_dir: str, checkpoint: dict[str, Any], max_epoch: int, move: bool = True) -> bool:
    """Before training resumes from ``checkpoint``: with ``move``, move the training and validation
    json_stats lines written after it to json_stats_discarded.log (a killed run's lost part, which
    the resumed run writes again), keeping the validation result of its epoch, which is not
    recomputed, and any other line (a test's). Returns whether that result is in the log. Rank 0
    only."""
    folder = RunFolder(output_dir)
    kept = checkpoint.get("stats_lines")
    if not isinstance(kept, int) or not os.path.isfile(folder.stats_path):
        return False
    with open(folder.stats_path, encoding="utf-8") as f:
        lines = f.readlines()
    # The validation of an epoch-end checkpoint's epoch is not recomputed; a mid-epoch one's epoch has none yet.
    own_epoch = None if checkpoint.get("iteration") else f"{checkpoint['epoch'] + 1}/{max_epoch}"

    def kind(line: str) -> str:
        entry = parse_stats(line) or {}
        if entry.get("_type") == "val_epoch" and entry.get("epoch") == own_epoch:
            return "own validation"
        return "rewritten" if entry.get("_type") in REWRITTEN_STATS else "kept"

    tail = lines[kept:]
    discarded = [line for line in tail if kind(line) == "rewritten"]
    if discarded and move:
        with open(folder.discarded_stats_path, "a", encoding="utf-8") as f:
            f.writelines(discarded)
        with atomic_path(folder.stats_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.writelines(lines[:kept] + [line for line in tail if kind(line) != "rewritten"])
        logger.info(
            "moved %d json_stats lines written after the checkpoint to %s", len(discarded), folder.discarded_stats_path
        )
    return any(kind(line) == "own validation" for line in lines)
