"""Multigrid's data side: ``ShapedBatches`` gives every global batch its own size and clip shape
(the same for any world size, resumable inside an epoch), the dataset makes each item in the
shape its key carries, and ``build_loader`` with a plan yields batches of those shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.datasets.helpers import make_video
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.datasets import build_dataset, build_loader, shuffle_loader, skip_batches
from vov3d.datasets.sampler import ClipSpec, EpochBatches, ShapedBatches, TrainKey

SMALL = ClipSpec(2, 16, (2, 2), (18, 22))
LARGE = ClipSpec(4, 24, (1, 3), (26, 32))


def plan(epoch: int, num_items: int) -> list[tuple[int, ClipSpec]]:
    """Batches of 8, 4, 2, 8, 4, 2 ... items while they fit; odd epochs in the large shape."""
    sizes, batches = (8, 4, 2), []
    while sum(size for size, _ in batches) + sizes[len(batches) % 3] <= num_items:
        batches.append((sizes[len(batches) % 3], LARGE if epoch % 2 else SMALL))
    return batches


def global_batches(world: int, epoch: int, num_items: int = 23) -> list[list[TrainKey]]:
    shares = []
    for rank in range(world):
        sampler = ShapedBatches(num_items, 2, plan, rank, world, seed=4)
        sampler.set_epoch(epoch)
        shares.append(list(sampler))
        assert len(shares[-1]) == sampler.num_batches == len(plan(epoch, num_items))
    return [sum(parts, []) for parts in zip(*shares)]


@pytest.mark.parametrize("epoch", [0, 1])
def test_every_process_takes_its_share_of_the_same_global_batches(epoch: int) -> None:
    one = global_batches(1, epoch)
    assert [len(batch) for batch in one] == [8, 4, 2, 8]  # 22 of 23 items; the next batch would not fit
    assert {key.spec for batch in one for key in batch} == {LARGE if epoch else SMALL}
    assert len({key.index for batch in one for key in batch}) == 22
    assert global_batches(2, epoch) == one
    # The order is EpochBatches': the same permutation, cut into other sizes.
    assert [key.index for batch in one for key in batch] == EpochBatches(23, 2, seed=4).order(epoch)[:22]


def test_skip_resumes_inside_a_shaped_epoch() -> None:
    sampler = ShapedBatches(23, 2, plan, 1, 2, seed=4)
    sampler.set_epoch(1)
    whole = list(sampler)
    sampler.skip(2)
    assert len(sampler) == 2 and list(sampler) == whole[2:]
    assert len(sampler) == 4 and list(sampler) == whole


def test_iterations_before_an_epoch_count_each_epochs_own() -> None:
    """The run's iteration count at an epoch's start (its TensorBoard step): multigrid epochs
    differ in length, fixed-shape ones do not."""
    big = lambda epoch, items: plan(epoch, items)[:1] if epoch % 2 else plan(epoch, items)  # noqa: E731
    assert [ShapedBatches(23, 2, big).batches_before(e) for e in range(4)] == [0, 4, 5, 9]
    assert [EpochBatches(23, 4).batches_before(e) for e in range(3)] == [0, 5, 10]


def test_a_plan_that_does_not_fit_is_refused() -> None:
    sampler = ShapedBatches(10, 2, lambda epoch, items: [(8, SMALL), (4, SMALL)])
    with pytest.raises(ValueError, match="the plan of epoch 1 does not fit 10 items in 1 shares"):
        list(sampler)
    odd = ShapedBatches(10, 2, lambda epoch, items: [(3, SMALL)], world=2)
    with pytest.raises(ValueError, match="does not fit 10 items in 2 shares"):
        len(odd)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shaped")
    for i in range(12):
        make_video(root / f"{i}.mp4", 40 + i)
    write_kinetics_csvs(root, [(f"{i}.mp4", i % 4) for i in range(12)])
    return root


def test_an_item_takes_the_shape_of_its_key(root: Path) -> None:
    dataset = build_dataset(small_cfg(root, root, "kinetics", "MODEL.NUM_CLASSES", 4), "train")
    own = (dataset.num_frames, dataset.transform, dataset.sampling_rate)
    plain = dataset[TrainKey(3, 0, 1)][0]
    assert plain.shape == (dataset.num_frames, dataset.transform.crop_size, dataset.transform.crop_size, 3)
    small, large = dataset[TrainKey(3, 0, 1, SMALL)][0], dataset[TrainKey(3, 0, 1, LARGE)][0]
    assert small.shape == (2, 16, 16, 3) and large.shape == (4, 24, 24, 3)
    assert torch.equal(dataset[TrainKey(3, 0, 1, LARGE)][0], large)  # drawn from the key alone
    assert (dataset.num_frames, dataset.transform, dataset.sampling_rate) == own  # restored after the item
    assert torch.equal(dataset[TrainKey(3, 0, 1)][0], plain)


def test_the_frame_stride_is_drawn_per_clip_in_the_specs_range(root: Path) -> None:
    dataset = build_dataset(small_cfg(root, root, "kinetics", "MODEL.NUM_CLASSES", 4), "train")
    rng = np.random.default_rng(0)
    rates = [dataset.spec_attributes(LARGE, rng)["sampling_rate"] for _ in range(60)]
    assert set(rates) == {1, 2, 3}
    assert {dataset.spec_attributes(SMALL, rng)["sampling_rate"] for _ in range(5)} == {2}
    transform = dataset.spec_attributes(LARGE, rng)["transform"]
    assert (transform.crop_size, transform.scales, transform.train) == (24, (26, 32), True)


@pytest.mark.parametrize("samples", [1, 2])
def test_a_train_loader_with_a_plan_yields_its_shapes(root: Path, samples: int) -> None:
    cfg = small_cfg(root, root, "kinetics", "MODEL.NUM_CLASSES", 4, "TRAIN.BATCH_SIZE", 2, "AUG.NUM_SAMPLE", samples)
    loader = build_loader(cfg, "train", plan)
    for epoch, spec in ((0, SMALL), (1, LARGE)):
        shuffle_loader(loader, epoch)
        shapes = [tuple(frames.shape) for frames, *_ in loader]
        sizes = [size for size, _ in plan(epoch, 12 * samples)]
        assert shapes == [(size, spec.num_frames, spec.crop_size, spec.crop_size, 3) for size in sizes]
    shuffle_loader(loader, 0)
    skip_batches(loader, 1)
    assert len(loader) == len(plan(0, 12 * samples)) - 1
