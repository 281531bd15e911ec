"""build_loader: batches, samplers (plain and distributed), the train order's seed, shuffle_loader, skip_batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import SequentialSampler

from tests.datasets.helpers import make_video
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.config import ConfigError
from vov3d.datasets import build, build_loader, shuffle_loader, skip_batches
from vov3d.datasets.build import ContiguousShards
from vov3d.datasets.sampler import EpochBatches


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loader")
    for i in range(5):
        make_video(root / f"{i}.mp4", 30 + 10 * i)
    write_kinetics_csvs(root, [(f"{i}.mp4", i) for i in range(5)])
    return root


def test_train_batches(root: Path) -> None:
    loader = build_loader(small_cfg(root, root), "train")
    assert isinstance(loader.sampler, EpochBatches) and loader.drop_last and loader.batch_size == 2
    batches = list(loader)
    assert len(batches) == 2  # 5 videos, batches of 2, the last partial one dropped
    frames, labels, index, meta = batches[0]
    assert frames.shape == (2, 4, 32, 32, 3) and frames.dtype == torch.uint8
    assert labels.dtype == torch.int64 and index.shape == (2,)
    assert set(meta) == {"video_index", "temporal_index", "spatial_index", "valid", "substituted"}
    assert meta["valid"].dtype == torch.bool and torch.equal(meta["video_index"], labels)
    assert meta["substituted"].tolist() == [-1, -1]


def test_test_batches_keep_every_view_in_order(root: Path) -> None:
    cfg = small_cfg(root, root)
    cfg.TEST.BATCH_SIZE = 4
    loader = build_loader(cfg, "test")
    assert isinstance(loader.sampler, SequentialSampler) and not loader.drop_last
    indices = torch.cat([batch[2] for batch in loader])
    assert indices.tolist() == list(range(5 * 6))


def test_rng_seed_decides_the_batches_not_the_global_generator(root: Path) -> None:
    cfg = small_cfg(root, root)
    cfg.DATA_LOADER.NUM_WORKERS = 2
    cfg.TRAIN.BATCH_SIZE = 1

    def epoch(global_seed: int) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)
        loader = build_loader(cfg, "train")
        assert loader.persistent_workers
        return [batch[0] for batch in loader]

    first, second = epoch(0), epoch(1)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    cfg.RNG_SEED += 1
    other = epoch(0)
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_a_train_split_smaller_than_a_batch_is_an_error(root: Path) -> None:
    cfg = small_cfg(root, root)
    cfg.TRAIN.BATCH_SIZE = 8
    with pytest.raises(ConfigError, match="TRAIN.BATCH_SIZE.*train split has 5 clips, fewer than one batch of 8"):
        build_loader(cfg, "train")


def test_samplers_when_a_process_group_exists(root: Path, tmp_path: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        train = build_loader(small_cfg(root, root), "train")
        val = build_loader(small_cfg(root, root), "val")
    finally:
        dist.destroy_process_group()
    assert isinstance(train.sampler, EpochBatches) and train.sampler.num_batches == 2 and len(train) == 2
    assert isinstance(val.sampler, ContiguousShards) and list(val.sampler) == list(range(5))
    orders = []
    for epoch in (0, 1):
        shuffle_loader(train, epoch)
        orders.append([key.index for key in train.sampler])
    assert orders[0] != orders[1] and len(set(orders[0])) == 4 and set(orders[0]) <= set(range(5))
    shuffle_loader(val, 3)  # harmless for any sampler


def test_skip_batches(root: Path) -> None:
    loader = build_loader(small_cfg(root, root), "train")
    whole = [batch[2].tolist() for batch in loader]
    skip_batches(loader, 1)
    assert len(loader) == 1 and [batch[2].tolist() for batch in loader] == whole[1:]
    assert len(loader) == 2 and [batch[2].tolist() for batch in loader] == whole
    with pytest.raises(ValueError, match="cannot skip 3 batches of an epoch of 2"):
        skip_batches(loader, 3)
    with pytest.raises(TypeError, match="not a train loader"):
        skip_batches(build_loader(small_cfg(root, root), "val"), 1)


def test_a_process_group_set_up_by_hand_still_needs_a_divisible_batch(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three processes that no launcher of ours counted: a batch of 2 cannot be split among them.
    monkeypatch.setattr(build, "is_distributed", lambda: True)
    monkeypatch.setattr(build, "get_world_size", lambda: 3)
    with pytest.raises(ConfigError, match="TRAIN.BATCH_SIZE.*multiple of the processes of torch.distributed = 3"):
        build_loader(small_cfg(root, root), "train")


def test_evaluation_shards_are_contiguous_and_padded() -> None:
    """Each process gets consecutive items (a video's test views together), all the same count;
    the padding repeats the first items, which the evaluation counts once by index."""
    shards = [list(ContiguousShards(7, rank, 3)) for rank in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6, 0, 1]]
    assert [len(ContiguousShards(8, rank, 2)) for rank in range(2)] == [4, 4]
    assert list(ContiguousShards(1, 1, 2)) == [0]
