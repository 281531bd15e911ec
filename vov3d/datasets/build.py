"""The dataset registry, ``build_dataset`` and ``build_loader``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler, default_collate

from vov3d.config import CfgNode, cfg_error
from vov3d.config.validation import check_batch_sizes, signal_numbers
from vov3d.utils.distributed import get_rank, get_world_size, is_distributed
from vov3d.utils.registry import Registry

from .sampler import BatchPlan, EpochBatches, ShapedBatches
from .worker_signals import WorkerStopSignals

logger = logging.getLogger(__name__)
DATASET_REGISTRY = Registry("dataset", case_insensitive=True)
# Videos per split whose existence check_splits looks up: enough to catch a wrong folder at once,
# few enough to be instant on network storage.
_SAMPLED_VIDEOS = 20


def build_dataset(cfg: CfgNode, split: str, **overrides: Any) -> Dataset:
    """The dataset of ``split`` ("train", "val": TRAIN.DATASET; "test": TEST.DATASET).

    Registered classes map the cfg to their constructor arguments in ``from_cfg(cfg, split)``;
    ``overrides`` replace arguments by name, e.g. ``paths=..., labels=...`` for the split's views
    of other files (see ``ClipDataset.from_cfg``).
    """
    key = "TEST.DATASET" if split == "test" else "TRAIN.DATASET"
    name = cfg.TEST.DATASET if split == "test" else cfg.TRAIN.DATASET
    if name not in DATASET_REGISTRY:
        raise cfg_error(cfg, key, f"not a registered dataset; registered: {', '.join(DATASET_REGISTRY)}")
    cls = DATASET_REGISTRY.get(name)
    dataset = cls(**cls.from_cfg(cfg, split, **overrides))
    top = max(dataset.labels, default=-1)
    if top >= cfg.MODEL.NUM_CLASSES:
        raise cfg_error(cfg, "MODEL.NUM_CLASSES", f"the {split} split of {name} has labels up to {top}")
    return dataset


def check_splits(cfg: CfgNode, datasets: dict[str, Dataset]) -> None:
    """Look for a sample of the videos of each split a run will read (``datasets`` by split, built,
    so their annotations were read): when none of them exists, DATA.PATH_PREFIX is wrong, and the
    run stops before training, not after it. Single missing files are for ``check_readable`` (val,
    test) and for training's substitution."""
    for split, dataset in datasets.items():
        paths = list(getattr(dataset, "paths", []))
        sample = paths[:: max(1, len(paths) // _SAMPLED_VIDEOS)]
        missing = [path for path in sample if not os.path.exists(path)]
        if missing and len(missing) == len(sample):
            raise cfg_error(
                cfg,
                "DATA.PATH_PREFIX",
                f"none of {len(sample)} videos sampled from the {split} split exists, e.g. {missing[0]}: "
                "check DATA.PATH_PREFIX and DATA.PATH_TO_DATA_DIR",
            )


class ContiguousShards(Sampler[int]):
    """Evaluation shards of consecutive items, one per process, padded to equal length by
    repeating the first items (as DistributedSampler pads): the test views of a video stay in
    one process, where its spatial crops share one decode."""

    def __init__(self, length: int, rank: int, world: int) -> None:
        per_rank = -(-length // world)
        padded = list(range(length)) + list(range(per_rank * world - length))
        self.indices = padded[rank * per_rank : (rank + 1) * per_rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def build_loader(cfg: CfgNode, split: str, plan: Optional[BatchPlan] = None) -> DataLoader:
    """A DataLoader over ``build_dataset(cfg, split)`` for this process.

    The batch is the global TRAIN.BATCH_SIZE (train, val) or TEST.BATCH_SIZE (test) divided by
    the world size (``check_batch_sizes`` saw that it divides before the processes started, and
    looks again here for a process group that no launcher of ours set up).
    Train, with one process or several, reads ``EpochBatches``: whole global batches of a
    permutation drawn from (RNG_SEED, epoch), each process its consecutive share, every item's
    random draws seeded from (RNG_SEED, epoch, index), so an epoch's batches are the same for any
    number of processes and loader workers. Call ``shuffle_loader`` every epoch and, to resume
    inside one, ``skip_batches``. Val/test are read in order; under torch.distributed in contiguous
    shards whose last is padded with repeated items, which ``index`` identifies. The loader has a
    generator of its own for its workers' seeds, so it never draws from the global torch generator.
    Its workers serve on through TRAIN.STOP_SIGNALS (``WorkerStopSignals``): the main process stops the run.
    With AUG.NUM_SAMPLE N > 1 a training item holds N clips and the batches count clips: EpochBatches
    takes TRAIN.BATCH_SIZE / N videos per global batch and ``flatten_clips`` makes each process's
    batch of TRAIN.BATCH_SIZE / world clips (``loader.batch_size`` counts videos).
    A train loader with a ``plan`` (multigrid training) reads ``ShapedBatches`` instead, as its
    batch sampler (``loader.batch_size`` is then None): each global batch has the size and clip
    shape the plan gives it, in clips.
    """
    dataset = build_dataset(cfg, split)
    train = split == "train"
    key = "TRAIN.BATCH_SIZE" if split in ("train", "val") else "TEST.BATCH_SIZE"
    global_batch = cfg.TRAIN.BATCH_SIZE if split in ("train", "val") else cfg.TEST.BATCH_SIZE
    world = get_world_size()
    if is_distributed():
        check_batch_sizes(cfg, world, "the processes of torch.distributed")
    samples = cfg.AUG.NUM_SAMPLE if train else 1
    global_batch //= samples  # items (videos) per global batch: check_batch_sizes saw that it divides
    if train and len(dataset) < global_batch:
        held = f"{len(dataset)} clips, fewer than one batch of {global_batch}"
        if samples > 1:
            held = f"{len(dataset)} videos, fewer than one batch of {global_batch} videos of {samples} clips"
        raise cfg_error(cfg, key, f"the train split has {held}")
    if train and samples > 1:
        logger.info(
            "AUG.NUM_SAMPLE %d: a global batch of TRAIN.BATCH_SIZE %d clips holds %d videos of %d clips each "
            "(PySlowFast's batch would hold %d videos, %d clips)",
            samples, global_batch * samples, global_batch, samples, global_batch * samples, global_batch * samples**2,
        )  # fmt: skip
    batch_sampler = None
    if train and plan is not None:
        sampler = None
        shaped = _in_items(plan, samples)
        batch_sampler = ShapedBatches(len(dataset), global_batch, shaped, get_rank(), world, cfg.RNG_SEED)
    elif train:
        sampler = EpochBatches(len(dataset), global_batch, get_rank(), world, cfg.RNG_SEED)
    elif is_distributed():
        sampler = ContiguousShards(len(dataset), get_rank(), world)
    else:
        sampler = SequentialSampler(dataset)
    workers = cfg.DATA_LOADER.NUM_WORKERS
    return DataLoader(
        dataset,
        batch_size=global_batch // world if batch_sampler is None else 1,
        sampler=sampler,
        batch_sampler=batch_sampler,
        collate_fn=flatten_clips if samples > 1 else None,
        num_workers=workers,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and cfg.NUM_GPUS > 0 and torch.cuda.is_available(),  # CPU runs: no CUDA
        drop_last=train and batch_sampler is None,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(cfg.RNG_SEED),
        worker_init_fn=WorkerStopSignals(signal_numbers(cfg.TRAIN.STOP_SIGNALS)),
    )


def _in_items(plan: BatchPlan, samples: int) -> BatchPlan:
    """``plan``, whose batches count clips, counting items of ``samples`` clips (AUG.NUM_SAMPLE)."""
    if samples == 1:
        return plan
    return lambda epoch, items: [(size // samples, spec) for size, spec in plan(epoch, items * samples)]


def _epoch_batches(loader: DataLoader) -> Optional[EpochBatches]:
    """The EpochBatches (or ShapedBatches, its batch sampler) of a train loader; None for val/test."""
    return next((s for s in (loader.batch_sampler, loader.sampler) if isinstance(s, EpochBatches)), None)


def train_sampler(loader: DataLoader) -> EpochBatches:
    """The EpochBatches (or ShapedBatches) of a train loader."""
    sampler = _epoch_batches(loader)
    if sampler is None:
        raise TypeError(f"not a train loader: it reads a {type(loader.sampler).__name__}")
    return sampler


def flatten_clips(items: Sequence[tuple[Any, ...]]) -> Any:
    """Collate training items of N clips each (AUG.NUM_SAMPLE) into one batch of their clips, an
    item's clips consecutive, each with the item's label, index and meta."""
    return default_collate([(clip, *rest) for frames, *rest in items for clip in frames])


def shuffle_loader(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler the epoch, so the train loader reads that epoch's order and draws
    (no-op for val/test)."""
    sampler = _epoch_batches(loader)
    if sampler is not None:
        sampler.set_epoch(epoch)


def skip_batches(loader: DataLoader, batches: int) -> None:
    """Make the train loader's next pass start at batch ``batches`` of its epoch (a run resumed
    inside an epoch), without loading the batches before it; the pass after it is whole again.
    Read before that pass, ``len(loader)`` counts the batches left;
    ``train_sampler(loader).num_batches`` is the whole epoch's."""
    train_sampler(loader).skip(batches)
