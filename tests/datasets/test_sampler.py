"""The training order and the training items are functions of (RNG_SEED, epoch, index) alone:
the same for any number of processes and loader workers, in any order of loading, without moving
the global random generators; ``skip`` resumes inside an epoch."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tests.datasets.helpers import make_video
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.config import CfgNode
from vov3d.datasets import build, build_dataset, build_loader, shuffle_loader
from vov3d.datasets.sampler import EpochBatches, TrainKey

AUGMENT = ["AUG.ENABLE", True, "AUG.AA_TYPE", "rand-m9-n2-mstd0.5"]
BROKEN = 4  # the unreadable video of the split below


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sampler")
    for i in range(BROKEN):
        make_video(root / f"{i}.mp4", 60 + 7 * i)
    (root / f"{BROKEN}.mp4").write_text("this is not a video\n")
    write_kinetics_csvs(root, [(f"{i}.mp4", i) for i in range(BROKEN + 1)])
    return root


def seed_globals(seed: int) -> None:
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)


def global_draws() -> tuple[float, float, float]:
    """The next number of Python's, NumPy's and torch's global generators."""
    return random.random(), float(np.random.rand()), torch.rand(()).item()


def global_batches(num_items: int, global_batch: int, world: int, epoch: int, seed: int = 0) -> list[list[int]]:
    """The items of each global batch of ``epoch``: the shares of ranks 0 .. world - 1 in turn."""
    shares = []
    for rank in range(world):
        sampler = EpochBatches(num_items, global_batch, rank, world, seed)
        sampler.set_epoch(epoch)
        keys = list(sampler)
        assert len(keys) == len(sampler) == sampler.num_batches * global_batch // world
        assert {(key.epoch, key.seed) for key in keys} == {(epoch, seed)}
        shares.append([key.index for key in keys])
    per_rank = global_batch // world
    batches = range(len(shares[0]) // per_rank)
    return [sum((share[j * per_rank : (j + 1) * per_rank] for share in shares), []) for j in batches]


def test_an_epoch_is_the_same_for_1_2_and_4_processes() -> None:
    for epoch in (0, 3):
        one = global_batches(22, 4, 1, epoch)
        assert len(one) == 5 == EpochBatches(22, 4).num_batches  # 2 items left out: no partial batch
        assert len({index for batch in one for index in batch}) == 20
        assert all(set(batch) <= set(range(22)) for batch in one)
        for world in (2, 4):
            assert global_batches(22, 4, world, epoch) == one, world


def test_epochs_and_seeds_give_other_orders() -> None:
    first = global_batches(22, 4, 1, 0)
    assert global_batches(22, 4, 1, 1) != first
    assert global_batches(22, 4, 1, 0, seed=1) != first
    assert global_batches(22, 4, 1, 0) == first


def test_the_global_generators_are_left_alone() -> None:
    seed_globals(0)
    expected = global_draws()
    seed_globals(0)
    sampler = EpochBatches(22, 4, 1, 2, seed=5)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        keys = list(sampler)
    keys[0].generators()
    assert global_draws() == expected


def test_skip_resumes_inside_the_epoch_once() -> None:
    sampler = EpochBatches(22, 4, 1, 2, seed=3)
    sampler.set_epoch(2)
    whole = list(sampler)
    assert len(whole) == 10
    sampler.skip(3)  # global batches 3 and 4: this rank's items 6 .. 9
    assert len(sampler) == 4
    assert list(sampler) == whole[6:]
    assert len(sampler) == 10 and list(sampler) == whole  # then whole epochs again
    sampler.skip(1)
    keys = iter(sampler)
    assert next(keys) == whole[2] and len(sampler) == 8  # the pass running now
    assert list(keys) == whole[3:] and len(sampler) == 10
    sampler.skip(5)
    assert list(sampler) == [] and list(sampler) == whole
    with pytest.raises(ValueError, match="cannot skip 6 batches of an epoch of 5"):
        sampler.skip(6)


@pytest.mark.parametrize(
    "args, message",
    [
        ((3, 4), "3 items are fewer than one global batch of 4"),
        ((8, 4, 0, 3), "global batch 4 must be a positive multiple of the 3 processes"),
        ((8, 4, 2, 2), "rank 2 is not one of the 2 processes"),
        ((8, 4, 0, 1, -1), "seed must be >= 0"),
    ],
)
def test_bad_arguments(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EpochBatches(*args)


def train_cfg(root: Path, *opts: object) -> CfgNode:
    return small_cfg(root, root, "kinetics", *opts)


def through_loader(dataset: torch.utils.data.Dataset, keys: Sequence[TrainKey], workers: int) -> list[tuple]:
    """``dataset[key]`` for ``keys`` in a DataLoader with ``workers`` persistent workers (no batching)."""
    loader = DataLoader(dataset, batch_size=None, sampler=keys, num_workers=workers, persistent_workers=workers > 0)
    return list(loader)


def test_a_training_item_is_a_function_of_its_key(root: Path) -> None:
    """Clip position, crop, flip, scale, RandAugment and the stand-in for the unreadable video:
    the same in the main process and in loader workers, in any order, without touching the
    global generators; another epoch draws others."""
    dataset = build_dataset(train_cfg(root, *AUGMENT), "train")
    keys = [TrainKey(index, epoch, 1) for epoch in (1, 0) for index in range(len(dataset))]
    seed_globals(0)
    expected = global_draws()
    seed_globals(0)
    items = {key: dataset[key] for key in keys}
    assert global_draws() == expected
    for key, (frames, label, index, meta) in items.items():
        assert index == key.index and frames.shape == (4, 32, 32, 3)
        assert meta["substituted"] == (BROKEN if key.index == BROKEN else -1)
        assert label == meta["video_index"] != BROKEN
    for workers in (0, 2):
        for order in (keys, keys[::-1]):
            for key, (frames, _, index, meta) in zip(order, through_loader(dataset, order, workers)):
                assert torch.equal(frames, items[key][0]), (workers, key)
                assert index == key.index and meta["video_index"] == items[key][3]["video_index"]
    for index in range(len(dataset)):
        assert not torch.equal(items[TrainKey(index, 0, 1)][0], items[TrainKey(index, 1, 1)][0]), index
        assert not torch.equal(items[TrainKey(index, 0, 1)][0], dataset[TrainKey(index, 0, 2)][0]), index
    # RandAugment is on and draws from the key (a few of its ops leave flat frames as they are).
    plain = build_dataset(train_cfg(root), "train")
    augmented = [not torch.equal(plain[key][0], items[key][0]) for key in keys]
    assert sum(augmented) >= len(keys) // 2, augmented


def test_a_key_indexes_only_the_train_split(root: Path) -> None:
    with pytest.raises(ValueError, match="indexes the train split, not the val split"):
        build_dataset(train_cfg(root), "val")[TrainKey(0, 0, 1)]
    with pytest.raises(IndexError, match="index 5 is out of range for 5 items"):
        build_dataset(train_cfg(root), "train")[TrainKey(5, 0, 1)]


def test_two_processes_load_the_batches_of_one(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 0 and rank 1 of two processes (batches of 1 each) load the halves of one process's batches of 2."""
    cfg = train_cfg(root, *AUGMENT)

    def epoch_batches(rank: int, world: int) -> list[torch.Tensor]:
        monkeypatch.setattr(build, "is_distributed", lambda: world > 1)
        monkeypatch.setattr(build, "get_world_size", lambda: world)
        monkeypatch.setattr(build, "get_rank", lambda: rank)
        loader = build_loader(cfg, "train")
        shuffle_loader(loader, 1)
        return [batch[0] for batch in loader]

    one = epoch_batches(0, 1)
    halves = [epoch_batches(rank, 2) for rank in range(2)]
    assert len(one) == 2 and all(len(half) == 2 for half in halves)
    for j, batch in enumerate(one):
        assert torch.equal(torch.cat([halves[0][j], halves[1][j]]), batch), j


def test_persistent_workers_give_a_resumed_run_the_same_epoch(root: Path) -> None:
    """The issue's bug at the loader level: one process, 2 persistent workers. Epoch 2 of a loader
    that read epoch 1 before is epoch 2 of a fresh loader (a run resumed at the epoch boundary),
    with the global generators in the same state (the resumed run restores them)."""
    cfg = train_cfg(root, "DATA_LOADER.NUM_WORKERS", 2, *AUGMENT)

    def epoch(loader: DataLoader, number: int) -> list[torch.Tensor]:
        shuffle_loader(loader, number)
        seed_globals(number)
        return [batch[0] for batch in loader]

    uninterrupted = build_loader(cfg, "train")
    epoch(uninterrupted, 1)
    expected = epoch(uninterrupted, 2)
    resumed = epoch(build_loader(cfg, "train"), 2)
    assert len(expected) == len(resumed) == 2
    assert all(torch.equal(a, b) for a, b in zip(expected, resumed))
