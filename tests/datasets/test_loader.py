"""build_loader: batches, samplers (plain and distributed), seeded workers, shuffle_loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

from tests.datasets.helpers import make_video
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.config import ConfigError
from vov3d.datasets import build, build_loader, shuffle_loader
from vov3d.datasets.build import ContiguousShards


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loader")
    for i in range(5):
        make_video(root / f"{i}.mp4", 30 + 10 * i)
    write_kinetics_csvs(root, [(f"{i}.mp4", i) for i in range(5)])
    return root


def test_train_batches(root: Path) -> None:
    loader = build_loader(small_cfg(root, root), "train")
    assert isinstance(loader.sampler, RandomSampler) and loader.drop_last and loader.batch_size == 2
    batches = list(loader)
    assert len(batches) == 2  # 5 videos, batches of 2, the last partial one dropped
    frames, labels, index, meta = batches[0]
    assert frames.shape == (2, 3, 4, 32, 32) and frames.dtype == torch.float32
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


def test_workers_are_seeded_reproducibly(root: Path) -> None:
    cfg = small_cfg(root, root)
    cfg.DATA_LOADER.NUM_WORKERS = 2
    cfg.TRAIN.BATCH_SIZE = 1

    def epoch() -> list[torch.Tensor]:
        torch.manual_seed(0)
        loader = build_loader(cfg, "train")
        assert loader.persistent_workers
        return [batch[0] for batch in loader]

    first, second = epoch(), epoch()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    torch.manual_seed(1)
    other = [batch[0] for batch in build_loader(cfg, "train")]
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_a_train_split_smaller_than_a_batch_is_an_error(root: Path) -> None:
    cfg = small_cfg(root, root)
    cfg.TRAIN.BATCH_SIZE = 8
    with pytest.raises(ConfigError, match="TRAIN.BATCH_SIZE.*5 clips, fewer than one batch of 8"):
        build_loader(cfg, "train")


def test_distributed_sampler_when_a_process_group_exists(root: Path, tmp_path: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        train = build_loader(small_cfg(root, root), "train")
        val = build_loader(small_cfg(root, root), "val")
    finally:
        dist.destroy_process_group()
    assert isinstance(train.sampler, DistributedSampler) and train.sampler.shuffle and train.sampler.drop_last
    assert isinstance(val.sampler, ContiguousShards) and list(val.sampler) == list(range(5))
    orders = []
    for epoch in (0, 1):
        shuffle_loader(train, epoch)
        orders.append(list(train.sampler))
    assert orders[0] != orders[1] and sorted(orders[0]) == list(range(5))
    shuffle_loader(val, 3)  # harmless for any sampler


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
