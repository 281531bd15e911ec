"""Evaluation: ``validate`` (one clip per video, during training) and the multi-view ``test``,
whose ``ViewAggregator`` is where the test views of a video are combined.

The model returns class probabilities in eval mode, so scores are used as they come.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from vov3d.config import CfgNode
from vov3d.datasets import build_loader
from vov3d.datasets.class_names import cfg_class_names
from vov3d.datasets.readable import check_readable
from vov3d.utils.distributed import all_gather_tensors, is_main_process
from vov3d.utils.logging import StatsLog
from vov3d.utils.meters import memory_mib, topk_correct
from vov3d.utils.run_layout import RunFolder
from vov3d.utils.tensorboard import labelled_heat_map, make_writer, write_png
from vov3d.utils.text import first_of

from .class_figures import ClassFigures
from .per_class import confusion_matrix, per_class_results, per_class_table, write_per_class_csv
from .preemption import Preempted, StopSignals, installed, leave
from .run_folder import checkpoint_class_names, load_test_checkpoint
from .runtime import Execution, compile_model, for_inference, prepare_model, progress

logger = logging.getLogger(__name__)

# Videos named in a log line about missing or broken views.
_MAX_LISTED = 5


def first_occurrences(keys: torch.Tensor) -> torch.Tensor:
    """Bool mask of the first occurrence of each value of ``keys`` (1-D, integer)."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    positions = torch.arange(keys.numel(), device=keys.device)
    first = torch.full((unique.numel(),), keys.numel(), dtype=torch.long, device=keys.device)
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    mask = torch.zeros(keys.numel(), dtype=torch.bool, device=keys.device)
    mask[first] = True
    return mask


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: DataLoader,
    epoch: int,
    max_epoch: int,
    execution: Execution,
    log: StatsLog,
    figures: Optional[ClassFigures] = None,
) -> dict[str, Any]:
    """Top-1 / top-5 error (in %) over the val split after epoch ``epoch`` (from 0) of
    ``max_epoch``, one clip per video, as PySlowFast reports it; the ``val_epoch`` line goes to
    ``log``, and ``figures`` of the clips' confusion matrix to its TensorBoard writer at step epoch + 1.

    Every process scores its shard; the per-clip results are gathered and each dataset index is
    counted once, so the repeats that pad the last shard do not count twice. Clips of unreadable
    videos (TEST.SKIP_BROKEN_VIDEOS) are left out, as the multi-view test leaves them out.
    """
    device = execution.device
    started = time.perf_counter()
    model.eval()
    rows = []
    for frames, labels, index, meta in progress(loader, len(loader), "val"):
        with execution.autocast():
            probs = model(execution.to_input(frames))
        top1, top5 = topk_correct(probs.float(), labels.to(device))
        valid = meta["valid"].to(device).long() if "valid" in meta else torch.ones_like(top1).long()
        columns = [index.to(device), top1.long(), top5.long(), valid, labels.to(device), probs.argmax(dim=1)]
        rows.append(torch.stack(columns, dim=1))
    local = torch.cat(rows) if rows else torch.zeros((0, 6), dtype=torch.long, device=device)
    clips = all_gather_tensors(local).cpu()
    clips = clips[first_occurrences(clips[:, 0])]
    skipped = int((clips[:, 3] == 0).sum())
    clips = clips[clips[:, 3] == 1]
    if not len(clips):
        raise ValueError(f"the val split has no clips to evaluate ({skipped} of unreadable videos left out)")
    stats = {
        "_type": "val_epoch",
        "epoch": f"{epoch + 1}/{max_epoch}",
        "top1_err": 100.0 * (1 - clips[:, 1].float().mean().item()),
        "top5_err": 100.0 * (1 - clips[:, 2].float().mean().item()),
        "num_clips": len(clips),
        "skipped_clips": skipped,
        "time_diff": time.perf_counter() - started,
        "mem": memory_mib(device),
    }
    log.write(stats, ("top1_err", "top5_err"), step=epoch + 1)
    if figures is not None and log.writer is not None:
        confusion = confusion_matrix(clips[:, 5], clips[:, 4], len(figures.names))
        figures.write(log.writer, "val", confusion, step=epoch + 1)
    return stats


@dataclass
class TestResult:
    """Per-video scores and the metrics of a multi-view test (accuracies in %)."""

    scores: torch.Tensor  # (videos, classes): the combined views
    labels: torch.Tensor  # (videos,), -1 for a video none of whose views arrived
    views: torch.Tensor  # (videos,): views combined
    lost_views: torch.Tensor  # (videos,): views that could not be decoded
    scored: torch.Tensor  # (videos,) bool: videos with at least one view, the ones measured
    top1_acc: float
    top5_acc: float
    mean_class_acc: float
    confusion: torch.Tensor  # (classes, classes): rows are labels, columns predictions


class ViewAggregator:
    """Combines the test views of each video by ``sum`` of probabilities or element-wise ``max``.

    Memory is one row of scores per video, however many views there are. Each dataset item is
    counted once, so items repeated to pad the last shard (or gathered twice) are
    ignored; views marked invalid (undecodable videos skipped with TEST.SKIP_BROKEN_VIDEOS) are
    counted as lost instead of combined.
    """

    def __init__(self, num_videos: int, num_items: int, num_classes: int, method: str = "sum") -> None:
        if method not in ("sum", "max"):
            raise ValueError(f"ensemble method must be sum or max, got {method!r}")
        self.method = method
        self.scores = torch.zeros(num_videos, num_classes)
        self.labels = torch.full((num_videos,), -1, dtype=torch.long)
        self.views = torch.zeros(num_videos, dtype=torch.long)
        self.lost_views = torch.zeros(num_videos, dtype=torch.long)
        self.seen = torch.zeros(num_items, dtype=torch.bool)

    def update(
        self,
        probs: torch.Tensor,
        labels: torch.Tensor,
        video_index: torch.Tensor,
        item_index: torch.Tensor,
        valid: Optional[torch.Tensor] = None,
    ) -> None:
        """Add a batch of views (CPU tensors): probabilities (B, classes) and, per view, the
        label, video index, dataset item index and validity."""
        valid = torch.ones_like(item_index, dtype=torch.bool) if valid is None else valid.bool()
        keep = first_occurrences(item_index) & ~self.seen[item_index]
        self.seen[item_index[keep]] = True
        videos = video_index[keep]
        self.labels[videos] = labels[keep]
        self.lost_views.index_add_(0, videos, (~valid[keep]).long())
        use = keep & valid
        videos, probs = video_index[use], probs[use].float()
        self.views.index_add_(0, videos, torch.ones_like(videos))
        if self.method == "sum":
            self.scores.index_add_(0, videos, probs)
        else:  # probabilities are >= 0, so the zero start is neutral for max
            self.scores.scatter_reduce_(0, videos.view(-1, 1).expand_as(probs), probs, reduce="amax")

    def result(self) -> TestResult:
        """Top-1, top-5 and mean per-class accuracy and the confusion matrix over the videos
        that have at least one view."""
        scored = self.views > 0
        scores, labels = self.scores[scored], self.labels[scored]
        classes = self.scores.shape[1]
        confusion = torch.zeros(classes, classes, dtype=torch.long)
        if len(labels):
            top1, top5 = topk_correct(scores, labels)
            confusion.index_put_((labels, scores.argmax(dim=1)), torch.ones_like(labels), accumulate=True)
            per_class = confusion.diag().double() / confusion.sum(dim=1).double()
            present = confusion.sum(dim=1) > 0
            accuracies = (
                100.0 * top1.double().mean().item(),
                100.0 * top5.double().mean().item(),
                100.0 * per_class[present].mean().item(),
            )
        else:
            accuracies = (float("nan"),) * 3
        return TestResult(self.scores, self.labels, self.views, self.lost_views, scored, *accuracies, confusion)


@torch.no_grad()
def test(cfg: CfgNode, signals: Optional[StopSignals] = None) -> TestResult:
    """Multi-view test of TEST.DATASET: NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS views per video,
    combined by DATA.ENSEMBLE_METHOD. A test-only run first opens every test video and stops with
    the list of unopenable ones (``check_readable``), as training does before it starts. Views are
    gathered from all processes every batch, so each holds only the per-video scores. Logs a
    ``test_final`` line and a per-class table, writes the confusion matrix (CSV and PNG in
    OUTPUT_DIR, image in TensorBoard, labelled with the class names), the other figures TENSORBOARD
    asks for (``ClassFigures``), OUTPUT_DIR/per_class.csv and TEST.SAVE_RESULTS_PATH. Class names
    are the dataset's (``cfg_class_names``), else the tested checkpoint's, else the class indices;
    the figures take TENSORBOARD.CLASS_NAMES_PATH's when it is set.

    One of TRAIN.STOP_SIGNALS while the test runs stops it in step at the next batch, before
    anything is written: rank 0 requeues a SLURM job and every rank raises Preempted (exit status
    75). The test has no partial state worth keeping; the same command tests again. A signal after
    the last batch lets the test finish."""
    with installed(signals, cfg) as signals:  # from the start: a signal while the model loads is kept
        try:
            return _test(cfg, signals)
        except Preempted as stop:
            raise leave(signals, stop, "nothing of the test written, the same command tests again") from None


def tested_model(cfg: CfgNode, device: torch.device) -> tuple[nn.Module, Optional[list[str]]]:
    """The model with the weights the test uses (``load_test_checkpoint``, where every process
    must call it: rank 0 chooses the file), not yet in eval mode; and the class names: the
    dataset's, else the checkpoint's, else None."""
    model = prepare_model(cfg, device, train=False)
    found = load_test_checkpoint(cfg, model)
    class_names = cfg_class_names(cfg, "test")
    if class_names is None and found is not None:
        class_names = checkpoint_class_names(found[1], cfg.MODEL.NUM_CLASSES)
    return model, class_names  # the checkpoint is dropped: no second copy of the weights through the test


def _test(cfg: CfgNode, signals: StopSignals) -> TestResult:
    execution = Execution.from_cfg(cfg)
    device = execution.device
    model, class_names = tested_model(cfg, device)
    figures = ClassFigures.from_cfg(cfg, class_names)
    model = compile_model(for_inference(model, cfg.TEST.FOLD_BN), cfg.MODEL.COMPILE)
    loader = build_loader(cfg, "test")
    dataset = loader.dataset
    if not cfg.TRAIN.ENABLE:  # a training run opened the test videos before its first epoch
        check_readable({"test": dataset}, cfg.TEST.SKIP_BROKEN_VIDEOS)
    aggregator = ViewAggregator(dataset.num_videos, len(dataset), cfg.MODEL.NUM_CLASSES, cfg.DATA.ENSEMBLE_METHOD)
    started = time.perf_counter()
    score_views(model, loader, aggregator, execution, signals)
    result = aggregator.result()
    _report_views(result, dataset.num_views, getattr(dataset, "paths", None))
    stats = {
        "_type": "test_final",
        "top1_acc": result.top1_acc,
        "top5_acc": result.top5_acc,
        "top1_err": 100.0 - result.top1_acc,
        "top5_err": 100.0 - result.top5_acc,
        "mean_class_acc": result.mean_class_acc,
        "num_videos": int(result.scored.sum()),
        "num_views": dataset.num_views,
        "skipped_videos": int((~result.scored).sum()),
        "lost_views": int(result.lost_views.sum()),
        "time_diff": time.perf_counter() - started,
        "mem": memory_mib(device),
    }
    StatsLog(cfg.OUTPUT_DIR).write(stats)
    if is_main_process():
        _write_outputs(cfg, result, getattr(dataset, "paths", None), class_names, figures)
    return result


def score_views(
    model: nn.Module,
    loader: DataLoader,
    aggregator: ViewAggregator,
    execution: Execution,
    signals: Optional[StopSignals] = None,
) -> None:
    """Score every test view of ``loader`` and add it to ``aggregator``; the views of all
    processes are gathered every batch, so each process holds only the per-video scores.

    Each view also carries whether this process received one of ``signals``: every process sees
    every flag in the same gather, so all raise Preempted at the same batch, with no collective
    of their own."""
    for it, (frames, labels, index, meta) in enumerate(progress(loader, len(loader), "test")):
        with execution.autocast():
            probs = model(execution.to_input(frames)).float()
        stop = torch.full_like(labels, int(signals is not None and signals.received is not None))
        ids = torch.stack([labels, meta["video_index"], index, meta["valid"].long(), stop], dim=1)
        probs, ids = all_gather_tensors(probs).cpu(), all_gather_tensors(ids.to(execution.device)).cpu()
        if ids[:, 4].any():
            raise Preempted(f"test batch {it + 1}/{len(loader)}")
        aggregator.update(probs, ids[:, 0], ids[:, 1], ids[:, 2], ids[:, 3].bool())


def _report_views(result: TestResult, num_views: int, paths: Optional[list[str]]) -> None:
    """Warn about videos whose views did not all arrive, and about views lost to broken files."""

    def named(mask: torch.Tensor) -> str:
        return first_of([paths[v] if paths else f"video {v}" for v in mask.nonzero().flatten().tolist()], _MAX_LISTED)

    missing = result.views + result.lost_views < num_views
    if missing.any():
        logger.warning(
            "%d videos are missing test views (of %d each): %s", int(missing.sum()), num_views, named(missing)
        )
    if result.lost_views.any():
        logger.warning(
            "%d views of %d videos could not be decoded and were left out; %d videos had no view at all and "
            "are not scored: %s",
            int(result.lost_views.sum()),
            int((result.lost_views > 0).sum()),
            int((~result.scored).sum()),
            named(result.lost_views > 0),
        )


def _write_outputs(
    cfg: CfgNode,
    result: TestResult,
    paths: Optional[list[str]],
    class_names: Optional[list[str]],
    figures: ClassFigures,
) -> None:
    """The per-class table (log and per_class.csv), the confusion matrix as CSV and PNG (and in
    TensorBoard, labelled with the figures' names, with the other ``figures``), and the
    per-video results."""
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    run = RunFolder(cfg.OUTPUT_DIR)
    classes = per_class_results(result.confusion, class_names)
    logger.info("per-class results of the test:\n%s", per_class_table(classes))
    write_per_class_csv(classes, run.per_class_path)
    np.savetxt(run.confusion_matrix_path("csv"), result.confusion.numpy(), fmt="%d", delimiter=",")
    image = labelled_heat_map(result.confusion, figures.names)
    write_png(run.confusion_matrix_path("png"), image)
    writer = make_writer(cfg, cfg.TEST.DATASET)
    if writer is not None:
        writer.add_image("test/confusion_matrix", image, dataformats="HWC")
        figures.write(writer, "test", result.confusion, full_matrix=False)
        for key in ("top1_acc", "top5_acc", "mean_class_acc"):
            writer.add_scalar(f"test/{key}", getattr(result, key))
        writer.close()
    if cfg.TEST.SAVE_RESULTS_PATH:
        path = os.path.join(cfg.OUTPUT_DIR, cfg.TEST.SAVE_RESULTS_PATH)
        torch.save(
            {
                "scores": result.scores,
                "labels": result.labels,
                "views": result.views,
                "lost_views": result.lost_views,
                "paths": paths,
                "ensemble_method": cfg.DATA.ENSEMBLE_METHOD,
            },
            path,
        )
        logger.info("saved per-video scores and labels to %s", path)
