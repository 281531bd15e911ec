"""Multigrid training schedules (Wu et al., "A Multigrid Method for Efficiently Training Video
Models", CVPR 2020), as PySlowFast computes them (``slowfast/utils/multigrid.py``,
``slowfast/datasets/multigrid_helper.py``, the Kinetics loader and ``misc.is_eval_epoch``).

The long cycle trains on coarse grids first: fewer frames and smaller crops with proportionally
more clips per batch, one full cycle of shapes in each LR stage of SOLVER.STEPS, then a
fine-tuning stage at the default shape. The short cycle varies the crop from one iteration to the
next. Everything here is a pure function of ``MultigridSettings``; ``from_cfg`` is the only reader
of the cfg. ``build_run`` gives the train loader ``MultigridPlan`` (the batches of each epoch) and
the loop sets sub-batch BN (``epoch_bn_plan``) and validates (``is_eval_epoch``) by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from vov3d.config import CfgNode, cfg_error
from vov3d.datasets.sampler import ClipSpec


@dataclass(frozen=True)
class MultigridSettings:
    """MULTIGRID.* with the default shape and schedule they are relative to."""

    long_cycle: bool
    short_cycle: bool
    long_cycle_factors: tuple[tuple[float, float], ...]  # (frames, crop) relative to the default
    short_cycle_factors: tuple[float, float]  # crop relative to the default crop
    epoch_factor: float
    bn_base_size: int
    eval_freq: int
    batch_size: int  # TRAIN.BATCH_SIZE: global, over all processes
    num_frames: int  # DATA.NUM_FRAMES
    crop_size: int  # DATA.TRAIN_CROP_SIZE
    sampling_rate: int  # DATA.SAMPLING_RATE
    jitter_scales: tuple[int, int]  # DATA.TRAIN_JITTER_SCALES
    steps: tuple[float, ...]  # SOLVER.STEPS
    lrs: tuple[float, ...]  # SOLVER.LRS
    max_epoch: int  # SOLVER.MAX_EPOCH

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> MultigridSettings:
        """The settings of ``cfg``. MULTIGRID's own values are checked when the cfg is loaded
        (``validate_cfg``); the checks here concern the schedule they are applied to."""
        m, s = cfg.MULTIGRID, cfg.SOLVER
        settings = cls(
            long_cycle=m.LONG_CYCLE,
            short_cycle=m.SHORT_CYCLE,
            long_cycle_factors=tuple((float(t), float(x)) for t, x in m.LONG_CYCLE_FACTORS),
            short_cycle_factors=(float(m.SHORT_CYCLE_FACTORS[0]), float(m.SHORT_CYCLE_FACTORS[1])),
            epoch_factor=m.EPOCH_FACTOR,
            bn_base_size=m.BN_BASE_SIZE,
            eval_freq=m.EVAL_FREQ,
            batch_size=cfg.TRAIN.BATCH_SIZE,
            num_frames=cfg.DATA.NUM_FRAMES,
            crop_size=cfg.DATA.TRAIN_CROP_SIZE,
            sampling_rate=cfg.DATA.SAMPLING_RATE,
            jitter_scales=(cfg.DATA.TRAIN_JITTER_SCALES[0], cfg.DATA.TRAIN_JITTER_SCALES[1]),
            steps=tuple(s.STEPS),
            lrs=tuple(s.LRS),
            max_epoch=s.MAX_EPOCH,
        )
        if settings.long_cycle:
            steps = list(s.STEPS)
            if len(steps) < 2 or steps[0] != 0 or steps != sorted(set(steps)) or s.MAX_EPOCH <= steps[-1]:
                raise cfg_error(
                    cfg,
                    "SOLVER.STEPS",
                    "the long cycle runs once in each LR stage (PySlowFast), so it needs increasing start "
                    "epochs beginning with 0 and at least two stages, the last starting before SOLVER.MAX_EPOCH = "
                    f"{s.MAX_EPOCH} (it becomes the fine-tuning at the default shape); cosine schedules need them too",
                )
            if s.LR_POLICY == "steps_with_relative_lrs" and len(s.LRS) < len(steps):
                raise cfg_error(cfg, "SOLVER.LRS", f"needs a rate for each of the {len(steps)} SOLVER.STEPS")
            for t, x in settings.long_cycle_factors:
                if round(settings.num_frames * t) < 1:
                    raise cfg_error(
                        cfg, "MULTIGRID.LONG_CYCLE_FACTORS", f"({t}, {x}) leaves no frame of DATA.NUM_FRAMES"
                    )
        if (settings.long_cycle or settings.short_cycle) and rescaled_solver(settings).max_epoch < 1:
            raise cfg_error(cfg, "MULTIGRID.EPOCH_FACTOR", f"leaves no epoch of SOLVER.MAX_EPOCH {s.MAX_EPOCH}")
        try:  # each long-cycle shape's short cycle must keep at least its batch
            for shapes in long_cycle_shapes(settings) if settings.long_cycle else ():
                g = shapes[-1]
                base = ClipShape(g.batch_factor, g.frames, int(g.crop), (1, 1), settings.jitter_scales)
                for iteration in range(3):
                    short_cycle_shape(settings, base, iteration)
        except ValueError as e:
            raise cfg_error(cfg, "MULTIGRID.SHORT_CYCLE_FACTORS", str(e)) from None
        return settings


@dataclass(frozen=True)
class GridShape:
    """A mini-batch shape: clips as a multiple of the default batch, frames, crop size."""

    batch_factor: int
    frames: int
    crop: float  # the short cycle's crops are not rounded where the schedule is computed


@dataclass(frozen=True)
class LongCycleStage:
    """One entry of the long-cycle schedule: ``shape`` is trained until ``end_epoch`` (exclusive)."""

    lr_stage: int  # index into SOLVER.STEPS / LRS; the last is the fine-tuning stage
    shape: GridShape
    end_epoch: int


@dataclass(frozen=True)
class ClipShape:
    """What a training batch looks like in one process."""

    batch_size: int  # clips per process
    frames: int
    crop_size: int
    sampling_rate: tuple[int, int]  # each clip draws its frame stride uniformly in [low, high]
    jitter_scales: tuple[int, int]  # training short side range

    @property
    def spec(self) -> ClipSpec:
        """The shape of each clip, as the dataset takes it."""
        return ClipSpec(self.frames, self.crop_size, self.sampling_rate, self.jitter_scales)


@dataclass(frozen=True)
class BNPlan:
    """The BatchNorm a long-cycle shape asks for: statistics over ``bn_base_size`` clips."""

    norm_type: str  # batchnorm, sub_batchnorm or sync_batchnorm (PySlowFast's names)
    num_splits: int = 1  # sub_batchnorm: sub-batches per process
    num_sync_devices: int = 1  # sync_batchnorm: processes per group


@dataclass(frozen=True)
class RescaledSolver:
    """SOLVER.STEPS / LRS / MAX_EPOCH as multigrid training uses them."""

    steps: tuple[float, ...]
    lrs: tuple[float, ...]  # empty where SOLVER.LRS has no rate per stage (cosine reads only max_epoch)
    max_epoch: int


def _relative_batch(default_size: float, frames: int, crop: float) -> int:
    """Clips per batch relative to the default, keeping clips x frames x crop^2 constant (Sec. 3.2)."""
    return int(round(default_size / (frames * crop * crop)))


def long_cycle_shapes(s: MultigridSettings) -> list[list[GridShape]]:
    """The shapes of each long-cycle factor. Frames and crop are rounded to integers; with the
    short cycle on, each is preceded by its two short-cycle shapes, whose crops are
    SHORT_CYCLE_FACTORS times the *default* crop (PySlowFast's ``get_long_cycle_schedule``)."""
    default_size = float(s.num_frames * s.crop_size**2)
    shapes = []
    for t_factor, s_factor in s.long_cycle_factors:
        frames = int(round(s.num_frames * t_factor))
        crops: list[float] = [int(round(s.crop_size * s_factor))]
        if s.short_cycle:
            crops = [s.crop_size * f for f in s.short_cycle_factors] + crops
        shapes.append([GridShape(_relative_batch(default_size, frames, c), frames, c) for c in crops])
    return shapes


def long_cycle_schedule(s: MultigridSettings) -> tuple[LongCycleStage, ...]:
    """PySlowFast's long-cycle schedule. Each LR stage of SOLVER.STEPS runs every long-cycle shape
    once, coarse first, each for epochs in proportion to its mean batch factor (so each takes the
    same number of iterations). The last LR stage (STEPS[-1] to MAX_EPOCH) becomes a fine-tuning
    stage at the last shape, as long as would save the same share of iterations. All epochs are
    then scaled so that they sum to MAX_EPOCH * EPOCH_FACTOR, and the cumulative end epochs
    rounded with Python's round (half to even: 239 * 1.5 = 358.5 ends at 358)."""
    if not s.long_cycle:
        return ()
    all_shapes = long_cycle_shapes(s)
    mean_batch = [sum(g.batch_factor for g in shapes) / len(shapes) for shapes in all_shapes]
    total_mean = sum(mean_batch)
    pieces: list[tuple[int, GridShape, float]] = []
    iterations = 0.0  # in units of "epochs at the default batch"
    for stage, (start, end) in enumerate(zip(s.steps, s.steps[1:])):
        for shapes, mean in zip(all_shapes, mean_batch):
            epochs = (end - start) * mean / total_mean
            iterations += epochs / mean
            pieces.append((stage, shapes[-1], epochs))
    saving = s.steps[-1] / iterations
    # PySlowFast takes all_shapes[-1][2], which exists only with the short cycle on (without it,
    # its long cycle stops with an IndexError); [-1] is the same shape and works for both.
    fine_tune = (s.max_epoch - s.steps[-1]) / saving * mean_batch[-1]
    pieces.append((len(s.steps) - 1, all_shapes[-1][-1], fine_tune))

    scale = s.max_epoch * s.epoch_factor / sum(p[2] for p in pieces)
    schedule, total = [], 0.0
    for stage, shape, epochs in pieces:
        total += epochs * scale
        schedule.append(LongCycleStage(stage, shape, int(round(total))))
    return tuple(schedule)


def stage_at(schedule: tuple[LongCycleStage, ...], epoch: int) -> LongCycleStage:
    """The schedule entry that trains ``epoch``; past the end, the last one."""
    return next((stage for stage in schedule if epoch < stage.end_epoch), schedule[-1])


def _jitter(s: MultigridSettings, crop: int) -> tuple[int, int]:
    """A smaller crop takes a proportionally smaller shortest short side, i.e. a wider span of the
    frame (the Kinetics loader: min scale times crop / default crop; the max scale is kept)."""
    return int(round(s.jitter_scales[0] * crop / s.crop_size)), s.jitter_scales[1]


def epoch_shape(s: MultigridSettings, epoch: int, processes: int) -> ClipShape:
    """The per-process batch of ``epoch`` (the long cycle's base shape; the short cycle varies it
    per iteration). Fewer frames draw each clip's stride uniformly from SAMPLING_RATE up to
    SAMPLING_RATE * (NUM_FRAMES // frames), so that some clips still span the default clip's time
    (PySlowFast's LONG_CYCLE_SAMPLING_RATE and ``get_random_sampling_rate``)."""
    if s.batch_size % processes:
        raise ValueError(f"the batch size {s.batch_size} does not split over {processes} processes")
    per_process = s.batch_size // processes
    if not s.long_cycle:
        rate = (s.sampling_rate, s.sampling_rate)
        return ClipShape(per_process, s.num_frames, s.crop_size, rate, _jitter(s, s.crop_size))
    shape = stage_at(long_cycle_schedule(s), epoch).shape
    crop = int(shape.crop)
    rate = (s.sampling_rate, s.sampling_rate * (s.num_frames // shape.frames))
    return ClipShape(shape.batch_factor * per_process, shape.frames, crop, rate, _jitter(s, crop))


def short_cycle_shape(s: MultigridSettings, base: ClipShape, iteration: int) -> ClipShape:
    """The shape of ``iteration`` (counted from 0 at each epoch's start) in the short cycle around
    ``base``: iteration % 3 picks SHORT_CYCLE_FACTORS[0], [1] times the default crop, then the base
    itself. Frames and stride stay; the batch grows by round((base crop / crop)^2)
    (PySlowFast's ``ShortCycleBatchSampler``)."""
    index = iteration % 3
    if not s.short_cycle or index == 2:
        return base
    exact = s.short_cycle_factors[index] * s.crop_size
    crop = int(round(exact))
    factor = int(round((base.crop_size / exact) ** 2))
    if factor < 1:
        raise ValueError(
            f"the short cycle's crop {crop} is so much larger than the long cycle's crop {base.crop_size} "
            "that its batch would hold no clip; use SHORT_CYCLE_FACTORS below the long cycle's crop factors"
        )
    return ClipShape(base.batch_size * factor, base.frames, crop, base.sampling_rate, _jitter(s, crop))


def epoch_batches(s: MultigridSettings, epoch: int, num_clips: int, short_cycle: bool = True) -> list[ClipShape]:
    """The global batches of ``epoch`` over ``num_clips`` training clips: the epoch's long-cycle
    shape, varied per iteration by the short cycle (unless ``short_cycle`` is False: precise BN's
    batches, as PySlowFast's), as many batches as the clips fill (the rest of the epoch's
    permutation is left out, as PySlowFast's ``ShortCycleBatchSampler`` drops it)."""
    base, batches, used = epoch_shape(s, epoch, 1), [], 0
    vary = short_cycle and s.short_cycle
    while used + (shape := short_cycle_shape(s, base, len(batches)) if vary else base).batch_size <= num_clips:
        batches.append(shape)
        used += shape.batch_size
    if not batches:
        raise ValueError(
            f"epoch {epoch + 1}'s first multigrid batch holds {shape.batch_size} clips of {shape.frames} x "
            f"{shape.crop_size} x {shape.crop_size} (frames x crop), more than the {num_clips} clips of the train "
            "split; use a smaller TRAIN.BATCH_SIZE or milder MULTIGRID.LONG_CYCLE_FACTORS / SHORT_CYCLE_FACTORS"
        )
    return batches


def check_fits(cfg: CfgNode, s: MultigridSettings, num_clips: int) -> None:
    """That every epoch of the run has a whole batch of ``num_clips`` clips (the train split),
    checked once per long-cycle shape before training."""
    last_epochs = [stage.end_epoch - 1 for stage in long_cycle_schedule(s)] or [0]
    try:
        for epoch in last_epochs:
            epoch_batches(s, epoch, num_clips)
    except ValueError as e:
        raise cfg_error(cfg, "TRAIN.BATCH_SIZE", str(e)) from None


@dataclass(frozen=True)
class MultigridPlan:
    """The train loader's batch plan (``ShapedBatches``): (clips, clip shape) of every global
    batch of an epoch."""

    settings: MultigridSettings
    short_cycle: bool = True  # False: the long cycle's shape of each epoch only (precise BN)

    def __call__(self, epoch: int, num_clips: int) -> list[tuple[int, ClipSpec]]:
        batches = epoch_batches(self.settings, epoch, num_clips, self.short_cycle)
        return [(shape.batch_size, shape.spec) for shape in batches]


def bn_plan(batch_per_process: int, bn_base_size: int) -> BNPlan:
    """BatchNorm statistics over BN_BASE_SIZE clips whatever the batch (Sec. 3.4): a larger batch
    is split into int(batch / BN_BASE_SIZE) sub-batches, a smaller one synchronised over
    int(BN_BASE_SIZE / batch) processes (PySlowFast's ``update_long_cycle``). Where that count of
    sub-batches does not divide the batch (44 clips: 5), the largest count below it that does
    (4; PySlowFast's reshape would fail there)."""
    factor = batch_per_process / bn_base_size
    if factor > 1:
        splits = next(k for k in range(int(factor), 0, -1) if batch_per_process % k == 0)
        return BNPlan("sub_batchnorm", num_splits=splits)
    if factor < 1:
        return BNPlan("sync_batchnorm", num_sync_devices=int(1.0 / factor))
    return BNPlan("batchnorm")


def epoch_bn_plan(s: MultigridSettings, epoch: int, processes: int) -> Optional[BNPlan]:
    """The BatchNorm of ``epoch`` under the long cycle (None without: BN stays as configured, as
    PySlowFast's short cycle leaves it)."""
    if not s.long_cycle:
        return None
    return bn_plan(epoch_shape(s, epoch, processes).batch_size, s.bn_base_size)


def describe(s: MultigridSettings, processes: int) -> list[str]:
    """The run's multigrid schedule in lines for the log: each long-cycle entry's epochs, shape,
    per-process batch and BatchNorm, and the short cycle's crops."""
    lines, start = [], 0
    for stage in long_cycle_schedule(s):
        if stage.end_epoch <= start:  # rounded to no epoch
            continue
        shape = epoch_shape(s, start, processes)
        bn = bn_plan(shape.batch_size, s.bn_base_size)
        norm = {
            "sub_batchnorm": f"BN over {bn.num_splits} sub-batches",
            "sync_batchnorm": f"BN per process (PySlowFast would sync {bn.num_sync_devices} processes)",
        }.get(bn.norm_type, "BN over the batch")
        lines.append(
            f"epochs {start + 1}-{stage.end_epoch}: {shape.batch_size} clips per process of {shape.frames} frames "
            f"at {shape.crop_size} x {shape.crop_size}, stride {shape.sampling_rate[0]}-{shape.sampling_rate[1]}, "
            f"{norm}, LR stage {stage.lr_stage}"
        )
        start = stage.end_epoch
    if s.short_cycle:
        crops = ", ".join(str(int(round(f * s.crop_size))) for f in s.short_cycle_factors)
        lines.append(f"short cycle: iterations cycle through crops {crops} (batch scaled up), then the epoch's shape")
    lines.append(f"{rescaled_solver(s).max_epoch} epochs in all")
    return lines


def rescaled_solver(s: MultigridSettings) -> RescaledSolver:
    """The LR schedule of a multigrid run. Long cycle: a step at the end of every schedule entry,
    each entry's rate its LR stage's rate times its batch factor (the linear scaling rule), and the
    fine-tuning stage split in half, the first half keeping the rate before it (PySlowFast's
    ``init_multigrid``; it takes SOLVER.GAMMA ** stage where vov3d takes SOLVER.LRS[stage], the
    same for its 1, 0.1, 0.01, ... configs). Short cycle alone: STEPS and MAX_EPOCH times
    EPOCH_FACTOR, rounded down."""
    if s.long_cycle:
        schedule = long_cycle_schedule(s)
        ends = [stage.end_epoch for stage in schedule]
        steps = [0, *ends[:-1], (ends[-2] + ends[-1]) // 2]
        lrs: tuple[float, ...] = ()
        if len(s.lrs) >= len(s.steps):
            rates = [s.lrs[stage.lr_stage] * stage.shape.batch_factor for stage in schedule]
            lrs = (*rates[:-1], rates[-2], rates[-1])
        return RescaledSolver(tuple(steps), lrs, ends[-1])
    if s.short_cycle:
        steps = tuple(int(step * s.epoch_factor) for step in s.steps)
        return RescaledSolver(steps, s.lrs, int(s.max_epoch * s.epoch_factor))
    return RescaledSolver(s.steps, s.lrs, s.max_epoch)


def is_eval_epoch(s: MultigridSettings, epoch: int, period: int) -> bool:
    """Whether to validate (or save, with TRAIN.CHECKPOINT_PERIOD as ``period``) after ``epoch``,
    and so run precise BN. Multigrid epochs differ in cost, so a long cycle validates EVAL_FREQ
    times per schedule entry instead, counted back from its last epoch (PySlowFast's
    ``is_eval_epoch`` / ``is_checkpoint_epoch``); the last epoch (of the rescaled MAX_EPOCH) always."""
    if epoch + 1 == rescaled_solver(s).max_epoch:
        return True
    start = 0
    for stage in long_cycle_schedule(s):
        if epoch < stage.end_epoch:
            every = max((stage.end_epoch - start) // s.eval_freq + 1, 1)
            return (stage.end_epoch - 1 - epoch) % every == 0
        start = stage.end_epoch
    return (epoch + 1) % period == 0
