"""The training order: epoch ``e`` of a run is a pure function of (RNG_SEED, e), for any number of
processes and loader workers, and a resumed run can start inside an epoch without reading the
batches it skips.

``EpochBatches`` draws one permutation of all items per epoch from its own generator and cuts it
into whole global batches; process ``rank`` takes its share of consecutive items of each, so
global batch ``j`` holds the same items whatever the world size. It yields ``TrainKey`` items:
the dataset seeds the item's random draws (clip position, crop, flip, scale, RandAugment, the
stand-in for an unreadable video) from the key, never from a generator that runs on from one
item to the next, so the draws do not depend on which worker loads the item or on what it loaded
before. ``ShapedBatches`` (multigrid) cuts the same permutation into global batches of the sizes
and clip shapes a plan gives each epoch, the shape travelling in every key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
from torch.utils.data import Sampler

# The first word after the seed tells the streams apart: NumPy's SeedSequence ignores trailing
# zeros, so [seed, epoch] and [seed, epoch, 0] would give the same numbers.
_ORDER_STREAM, _ITEM_STREAM = 0, 1


class ClipSpec(NamedTuple):
    """A training clip's shape where multigrid training varies it (``ShapedBatches``): frames,
    crop size, the range its frame stride is drawn from (uniformly, per clip) and the range of its
    short side before the crop."""

    num_frames: int
    crop_size: int
    sampling_rate: tuple[int, int]
    jitter_scales: tuple[int, int]


class TrainKey(NamedTuple):
    """Training item ``index`` of ``epoch`` in a run seeded with ``seed`` (RNG_SEED), of the shape
    ``spec`` (None: the dataset's own). It travels to the loader workers with the index, as
    persistent workers never see what the main process sets on its copy of the dataset."""

    index: int
    epoch: int
    seed: int
    spec: Optional[ClipSpec] = None

    def generators(self) -> tuple[np.random.Generator, torch.Generator]:
        """Fresh NumPy and torch generators for this item's draws, seeded from (seed, epoch, index)."""
        sequence = np.random.SeedSequence([self.seed, _ITEM_STREAM, self.epoch, self.index])
        numpy_seq, torch_seq = sequence.spawn(2)
        torch_seed = int(torch_seq.generate_state(1, np.uint64)[0])
        return np.random.default_rng(numpy_seq), torch.Generator().manual_seed(torch_seed)


class EpochBatches(Sampler[TrainKey]):
    """The training keys of process ``rank`` of ``world``: ``num_batches = num_items //
    global_batch`` whole global batches per epoch (the rest of the permutation is dropped), and of
    each the ``global_batch // world`` consecutive items at ``rank``'s place.

    ``set_epoch`` picks the epoch (``shuffle_loader``); ``skip(k)`` makes the next pass start at
    global batch ``k`` of the epoch (a resumed run), the pass after it at 0 again.
    """

    def __init__(self, num_items: int, global_batch: int, rank: int = 0, world: int = 1, seed: int = 0) -> None:
        if global_batch < 1 or global_batch % world:
            raise ValueError(f"the global batch {global_batch} must be a positive multiple of the {world} processes")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not one of the {world} processes")
        if num_items < global_batch:
            raise ValueError(f"{num_items} items are fewer than one global batch of {global_batch}")
        if seed < 0:
            raise ValueError(f"the seed must be >= 0, got {seed}")
        self.num_items, self.global_batch, self.rank, self.world, self.seed = num_items, global_batch, rank, world, seed
        self.per_rank = global_batch // world
        self.epoch = 0
        self._next_start: Optional[int] = None  # set by skip, taken by the next pass
        self._pass_start = 0  # the first global batch of the pass running now (or last run)

    def global_batches(self, epoch: int) -> list[tuple[int, Optional[ClipSpec]]]:
        """The size and clip shape of each global batch of ``epoch``, in items."""
        return [(self.global_batch, None)] * (self.num_items // self.global_batch)

    def batches_before(self, epoch: int) -> int:
        """Global batches in the epochs before ``epoch``: the run's count of iterations."""
        return epoch * (self.num_items // self.global_batch)

    @property
    def num_batches(self) -> int:
        """Global batches in a whole epoch (each process yields one share of each): the iterations
        of an epoch for the schedule and the logs, the same for any world size."""
        return self.num_items // self.global_batch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, batches: int) -> None:
        """Start the next pass at global batch ``batches`` of the epoch, without producing the
        batches before it."""
        if not 0 <= batches <= self.num_batches:
            raise ValueError(f"cannot skip {batches} batches of an epoch of {self.num_batches}")
        self._next_start = batches

    def order(self, epoch: int) -> list[int]:
        """The permutation of all items for ``epoch``, from a generator of its own (the global
        torch generator is never touched)."""
        state = np.random.SeedSequence([self.seed, _ORDER_STREAM, epoch]).generate_state(1, np.uint64)
        generator = torch.Generator().manual_seed(int(state[0]))
        return torch.randperm(self.num_items, generator=generator).tolist()

    def shares(self) -> Iterator[list[TrainKey]]:
        """This process's share of each global batch of the pass: consecutive items of the epoch's
        permutation, at ``rank``'s place in the batch."""
        start = self._next_start if self._next_start is not None else 0
        self._next_start, self._pass_start = None, start
        order, epoch = self.order(self.epoch), self.epoch
        batches = self.global_batches(epoch)
        first = sum(size for size, _ in batches[:start])
        for size, spec in batches[start:]:
            share = size // self.world
            begin = first + self.rank * share
            yield [TrainKey(index, epoch, self.seed, spec) for index in order[begin : begin + share]]
            first += size
        self._pass_start = 0

    def batches_left(self) -> int:
        """Global batches of the pass running now, or else of the next one."""
        start = self._next_start if self._next_start is not None else self._pass_start
        return self.num_batches - start

    def __iter__(self) -> Iterator[TrainKey]:
        for share in self.shares():
            yield from share

    def __len__(self) -> int:
        """Items this process yields in the pass running now, or else in the next one."""
        return self.batches_left() * self.per_rank


# (epoch, items) -> the (size in items, clip shape) of each global batch of the epoch.
BatchPlan = Callable[[int, int], Sequence[tuple[int, ClipSpec]]]


class ShapedBatches(EpochBatches):
    """EpochBatches whose global batches differ in size and clip shape (multigrid training):
    ``plan(epoch, num_items)`` lists them, and this process's share of each is one batch, so it is
    the loader's ``batch_sampler`` (iterating yields lists of keys, and ``len`` counts batches,
    where EpochBatches' counts items). Every process takes the same batch sizes and shapes at every
    iteration; the order is EpochBatches', so an epoch is the same for any world size."""

    def __init__(
        self, num_items: int, global_batch: int, plan: BatchPlan, rank: int = 0, world: int = 1, seed: int = 0
    ) -> None:
        super().__init__(num_items, global_batch, rank, world, seed)
        self.plan = plan
        self._planned: tuple[int, list[tuple[int, Optional[ClipSpec]]]] = (-1, [])
        self._counts: dict[int, int] = {}  # epoch -> batches, for batches_before

    def global_batches(self, epoch: int) -> list[tuple[int, Optional[ClipSpec]]]:
        if self._planned[0] != epoch:
            batches = list(self.plan(epoch, self.num_items))
            if sum(size for size, _ in batches) > self.num_items or any(size % self.world for size, _ in batches):
                raise ValueError(
                    f"the plan of epoch {epoch + 1} does not fit {self.num_items} items in {self.world} shares"
                )
            self._planned, self._counts[epoch] = (epoch, batches), len(batches)
        return self._planned[1]

    @property
    def num_batches(self) -> int:
        return len(self.global_batches(self.epoch))

    def batches_before(self, epoch: int) -> int:
        for e in range(epoch):  # each epoch planned once in a run (a resumed one plans those it skipped)
            if e not in self._counts:
                self._counts[e] = len(self.plan(e, self.num_items))
        return sum(self._counts[e] for e in range(epoch))

    def __iter__(self) -> Iterator[list[TrainKey]]:  # type: ignore[override]
        return self.shares()

    def __len__(self) -> int:
        """Batches this process yields in the pass running now, or else in the next one."""
        return self.batches_left()
