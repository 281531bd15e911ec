"""Multigrid schedules (vov3d/engine/multigrid.py) against PySlowFast's rules, worked out by hand.

The running example is PySlowFast's one published multigrid recipe (SLOWFAST_8x8_R50_stepwise_
multigrid: SOLVER.STEPS [0, 94, 154, 196], MAX_EPOCH 239, TRAIN.BATCH_SIZE 64 on 8 GPUs, crop 224)
with 8 frames at stride 8 ("8x8") or 16 at stride 8 ("16x8"), and the paper's defaults: long-cycle
factors (1/4, 1/sqrt2), (1/2, 1/sqrt2), (1/2, 1), (1, 1), short-cycle crops 1/2 and 1/sqrt2,
EPOCH_FACTOR 1.5, BN_BASE_SIZE 8, EVAL_FREQ 3.

Hand arithmetic of the long-cycle shapes at 8x8 (frames x crop^2 of the default: 8 x 224^2 = 401408):
  frames round(8/4) = 2, round(8/2) = 4; crop round(224 / sqrt2) = round(158.39) = 158
  batch factors: 401408 / (2 x 158^2) = 8.04 -> 8; / (4 x 158^2) = 4.02 -> 4; / (4 x 224^2) = 2; 1
  short-cycle crops 112 and 158.39 (unrounded): at 2 frames 401408 / (2 x 112^2) = 16, / (2 x 25088) = 8
Schedule (long and short cycle): mean batch factors per shape (16+8+8)/3, (8+4+4)/3, (8+4+2)/3,
(4+2+1)/3 = 32/3, 16/3, 14/3, 7/3, sum 23. LR stage lengths 94, 60, 42 are split in proportion
(94 x 32/69, ...); iteration saving 23/4; fine-tuning 43 / (23/4) x 7/3 = 1204/69 epochs; all
scaled by 358.5 / (196 + 1204/69) and summed: 73.22, 109.83, 141.86, 157.88, 204.61, 227.98,
248.43, 258.65, 291.37, 307.72, 322.04, 329.19, 358.5 -> rounded 73, 110, ..., 329, 358 (half to
even). Long cycle alone: means 8, 4, 2, 1 (sum 15), saving 15/4, fine-tuning 43 / 3.75 = 11.47,
sums 86.63, 129.94, 151.60, 162.43, 217.73, 245.37, 259.20, 266.11, 304.82, 324.17, 333.85,
338.69, 358.5.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from vov3d.config import ConfigError, get_cfg
from vov3d.engine.multigrid import (
    BNPlan,
    ClipShape,
    GridShape,
    LongCycleStage,
    MultigridSettings,
    bn_plan,
    epoch_shape,
    is_eval_epoch,
    long_cycle_schedule,
    long_cycle_shapes,
    rescaled_solver,
    short_cycle_shape,
)
from vov3d.engine.solver import LRSchedule

ROOT_HALF = 0.5**0.5

BOTH = MultigridSettings(
    long_cycle=True,
    short_cycle=True,
    long_cycle_factors=((0.25, ROOT_HALF), (0.5, ROOT_HALF), (0.5, 1.0), (1.0, 1.0)),
    short_cycle_factors=(0.5, ROOT_HALF),
    epoch_factor=1.5,
    bn_base_size=8,
    eval_freq=3,
    batch_size=64,
    num_frames=8,
    crop_size=224,
    sampling_rate=8,
    jitter_scales=(256, 320),
    steps=(0, 94, 154, 196),
    lrs=(1.0, 0.1, 0.01, 0.001),
    max_epoch=239,
)
LONG = replace(BOTH, short_cycle=False)
SHORT = replace(BOTH, long_cycle=False)
OFF = replace(BOTH, long_cycle=False, short_cycle=False)
ENDS_BOTH = [73, 110, 142, 158, 205, 228, 248, 259, 291, 308, 322, 329, 358]


def test_long_cycle_shapes_8x8() -> None:
    assert long_cycle_shapes(LONG) == [
        [GridShape(8, 2, 158)],
        [GridShape(4, 4, 158)],
        [GridShape(2, 4, 224)],
        [GridShape(1, 8, 224)],
    ]
    with_short = [[(g.batch_factor, g.frames, round(g.crop, 2)) for g in shapes] for shapes in long_cycle_shapes(BOTH)]
    assert with_short == [
        [(16, 2, 112.0), (8, 2, 158.39), (8, 2, 158)],
        [(8, 4, 112.0), (4, 4, 158.39), (4, 4, 158)],
        [(8, 4, 112.0), (4, 4, 158.39), (2, 4, 224)],
        [(4, 8, 112.0), (2, 8, 158.39), (1, 8, 224)],
    ]


def test_long_and_short_cycle_schedule_8x8() -> None:
    """One cycle of the four shapes per LR stage, then fine-tuning at the default shape."""
    shapes = [(8, 2, 158), (4, 4, 158), (2, 4, 224), (1, 8, 224)]
    expected = [
        LongCycleStage(stage, GridShape(*shapes[i]), end)
        for (stage, i), end in zip([(s, i) for s in range(3) for i in range(4)] + [(3, 3)], ENDS_BOTH)
    ]
    assert list(long_cycle_schedule(BOTH)) == expected


def test_long_cycle_alone_schedule_8x8() -> None:
    """PySlowFast stops with an IndexError here (all_shapes[-1][2] needs the short cycle); the
    fine-tuning stage takes the last shape, as it does with the short cycle."""
    schedule = long_cycle_schedule(LONG)
    assert [s.end_epoch for s in schedule] == [87, 130, 152, 162, 218, 245, 259, 266, 305, 324, 334, 339, 358]
    assert schedule[-1] == LongCycleStage(3, GridShape(1, 8, 224), 358)


def test_the_last_end_rounds_half_to_even_as_pythons_round() -> None:
    assert 239 * 1.5 == 358.5 and long_cycle_schedule(BOTH)[-1].end_epoch == 358
    assert [s.end_epoch for s in long_cycle_schedule(replace(BOTH, epoch_factor=1.0))] == [
        49, 73, 95, 105, 136, 152, 166, 172, 194, 205, 215, 219, 239
    ]  # fmt: skip


def test_no_schedule_without_the_long_cycle() -> None:
    assert long_cycle_schedule(SHORT) == () and long_cycle_schedule(OFF) == ()


def test_epoch_shapes_8x8_on_8_processes() -> None:
    """8 clips per process by default; fewer frames sample at a random stride up to 8 x (8 // frames)
    and a smaller crop scales the shortest short side: round(256 x 158 / 224) = 181."""
    coarse = ClipShape(64, 2, 158, (8, 32), (181, 320))
    assert epoch_shape(BOTH, 0, 8) == coarse
    assert epoch_shape(BOTH, 72, 8) == coarse
    assert epoch_shape(BOTH, 73, 8) == ClipShape(32, 4, 158, (8, 16), (181, 320))
    assert epoch_shape(BOTH, 141, 8) == ClipShape(16, 4, 224, (8, 16), (256, 320))
    assert epoch_shape(BOTH, 157, 8) == ClipShape(8, 8, 224, (8, 8), (256, 320))
    assert epoch_shape(BOTH, 158, 8) == coarse  # the next LR stage starts its cycle again
    assert epoch_shape(BOTH, 357, 8) == ClipShape(8, 8, 224, (8, 8), (256, 320))
    assert epoch_shape(BOTH, 400, 8) == ClipShape(8, 8, 224, (8, 8), (256, 320))
    assert epoch_shape(BOTH, 0, 2) == ClipShape(256, 2, 158, (8, 32), (181, 320))


def test_epoch_shapes_16x8() -> None:
    """16 frames: 4, 8, 8, 16 frames, strides up to 8 x 4 and 8 x 2; the batch factors (and so the
    epochs) are the 8x8 ones, 16 x 224^2 / (4 x 158^2) = 8.04 -> 8."""
    s = replace(BOTH, num_frames=16)
    assert [st.end_epoch for st in long_cycle_schedule(s)] == ENDS_BOTH
    assert [epoch_shape(s, e, 16) for e in (0, 73, 110, 142)] == [
        ClipShape(32, 4, 158, (8, 32), (181, 320)),
        ClipShape(16, 8, 158, (8, 16), (181, 320)),
        ClipShape(8, 8, 224, (8, 16), (256, 320)),
        ClipShape(4, 16, 224, (8, 8), (256, 320)),
    ]


def test_odd_frame_counts_round_half_to_even() -> None:
    """13 frames (X3D-S): round(3.25) = 3, round(6.5) = 6; 13 x 224^2 / (3 x 158^2) = 8.71 -> 9,
    / (6 x 158^2) = 4.35 -> 4, / (6 x 224^2) = 2.17 -> 2; strides up to 8 x (13 // 3) = 32, 8 x 2."""
    s = replace(LONG, num_frames=13)
    assert long_cycle_shapes(s) == [
        [GridShape(9, 3, 158)],
        [GridShape(4, 6, 158)],
        [GridShape(2, 6, 224)],
        [GridShape(1, 13, 224)],
    ]
    assert epoch_shape(s, 0, 8).sampling_rate == (8, 32)
    assert epoch_shape(s, 100, 8).sampling_rate == (8, 16)


def test_short_cycle_within_the_long_cycle() -> None:
    """Iteration % 3: crop 112, 158 (of the default 224), then the epoch's own; the batch times
    round((crop now / crop)^2): at crop 158, (158/112)^2 = 1.99 -> 2 and (158/158.39)^2 -> 1."""

    def cycle(epoch: int) -> list[tuple[int, int, int]]:
        base = epoch_shape(BOTH, epoch, 8)
        return [(c.batch_size, c.frames, c.crop_size) for c in (short_cycle_shape(BOTH, base, i) for i in range(6))]

    assert cycle(0) == [(128, 2, 112), (64, 2, 158), (64, 2, 158)] * 2
    assert cycle(73) == [(64, 4, 112), (32, 4, 158), (32, 4, 158)] * 2
    assert cycle(110) == [(64, 4, 112), (32, 4, 158), (16, 4, 224)] * 2
    assert cycle(357) == [(32, 8, 112), (16, 8, 158), (8, 8, 224)] * 2
    small = short_cycle_shape(BOTH, epoch_shape(BOTH, 0, 8), 0)
    assert (small.sampling_rate, small.jitter_scales) == ((8, 32), (128, 320))


def test_short_cycle_alone() -> None:
    base = epoch_shape(SHORT, 200, 8)
    assert base == ClipShape(8, 8, 224, (8, 8), (256, 320))
    assert [short_cycle_shape(SHORT, base, i) for i in range(4)] == [
        ClipShape(32, 8, 112, (8, 8), (128, 320)),
        ClipShape(16, 8, 158, (8, 8), (181, 320)),
        base,
        ClipShape(32, 8, 112, (8, 8), (128, 320)),
    ]
    assert short_cycle_shape(OFF, base, 0) == base


def test_a_short_cycle_crop_above_the_long_cycle_crop_is_an_error() -> None:
    s = replace(BOTH, long_cycle_factors=((1.0, 0.5),), short_cycle_factors=(0.5, 1.0))
    base = epoch_shape(s, 0, 8)
    assert base.batch_size == 32  # 8 x 224^2 / (8 x 112^2) = 4 times the default 8
    assert short_cycle_shape(s, base, 0).batch_size == 32  # times (112 / 112)^2 = 1
    with pytest.raises(ValueError, match="crop 224 .* crop 112"):
        short_cycle_shape(s, base, 1)  # (112 / 224)^2 = 0.25 -> no clip


def test_batch_must_split_over_the_processes() -> None:
    with pytest.raises(ValueError, match="64 does not split over 3"):
        epoch_shape(BOTH, 0, 3)


@pytest.mark.parametrize(
    "batch, plan",
    [
        (64, BNPlan("sub_batchnorm", num_splits=8)),
        (32, BNPlan("sub_batchnorm", num_splits=4)),
        (12, BNPlan("sub_batchnorm", num_splits=1)),  # 1.5 -> int 1, as PySlowFast
        (44, BNPlan("sub_batchnorm", num_splits=4)),  # 5.5 -> 5 does not divide 44: 4 (PySlowFast fails)
        (42, BNPlan("sub_batchnorm", num_splits=3)),  # 5.25 -> 5, 4 do not divide 42: 3
        (8, BNPlan("batchnorm")),
        (4, BNPlan("sync_batchnorm", num_sync_devices=2)),
        (2, BNPlan("sync_batchnorm", num_sync_devices=4)),
    ],
)
def test_bn_statistics_over_bn_base_size_clips(batch: int, plan: BNPlan) -> None:
    assert bn_plan(batch, 8) == plan


def test_rescaled_lr_steps_of_the_long_cycle() -> None:
    """A step at every shape change, the rate times the batch factor, the fine-tuning stage split
    at (329 + 358) // 2 = 343 with its first half at the rate before it."""
    solver = rescaled_solver(BOTH)
    assert solver.steps == (0, 73, 110, 142, 158, 205, 228, 248, 259, 291, 308, 322, 329, 343)
    assert solver.max_epoch == 358
    expected = [8, 4, 2, 1, 0.8, 0.4, 0.2, 0.1, 0.08, 0.04, 0.02, 0.01, 0.01, 0.001]
    assert solver.lrs == pytest.approx(expected)
    schedule = LRSchedule("steps_with_relative_lrs", 0.1, 0.0, solver.steps, solver.lrs, solver.max_epoch, 0.0, 0.0)
    rates = [schedule(e) for e in (0, 72.9, 73, 158, 330, 343)]
    assert rates == pytest.approx([0.8, 0.8, 0.4, 0.08, 0.001, 0.0001])


def test_rescaled_steps_of_the_short_cycle_alone() -> None:
    """int(94 x 1.5) = 141, int(154 x 1.5) = 231, int(196 x 1.5) = 294, int(358.5) = 358."""
    solver = rescaled_solver(SHORT)
    assert (solver.steps, solver.lrs, solver.max_epoch) == ((0, 141, 231, 294), (1.0, 0.1, 0.01, 0.001), 358)
    assert rescaled_solver(OFF) == type(solver)((0, 94, 154, 196), (1.0, 0.1, 0.01, 0.001), 239)


def test_a_cosine_schedule_without_rates_gets_steps_and_max_epoch_only() -> None:
    solver = rescaled_solver(replace(BOTH, lrs=()))
    assert (solver.lrs, solver.max_epoch, solver.steps[-1]) == ((), 358, 343)


def test_validation_epochs_of_the_long_cycle() -> None:
    """EVAL_FREQ 3 per entry, back from its last epoch every (length // 3 + 1): [0, 73) every 25,
    [73, 110) every 13, [110, 142) every 11, [142, 158) every 6, ..., [329, 358) every 10."""
    evaluated = [e for e in range(358) if is_eval_epoch(BOTH, e, period=10)]
    assert evaluated[:12] == [22, 47, 72, 83, 96, 109, 119, 130, 141, 145, 151, 157]
    assert evaluated[-3:] == [337, 347, 357]
    assert len(evaluated) == 39  # 3 in each of 13 entries


def test_validation_epochs_without_the_long_cycle_follow_the_period() -> None:
    evaluated = [e for e in range(358) if is_eval_epoch(SHORT, e, period=100)]
    assert evaluated == [99, 199, 299, 357]  # and the last of the 358 rescaled epochs


def changes(s: MultigridSettings) -> list[int]:
    shapes = [(shape.frames, shape.crop_size) for shape in (epoch_shape(s, e, 8) for e in range(358))]
    return [e for e in range(1, 358) if shapes[e] != shapes[e - 1]]


def test_the_shape_changes_where_the_long_cycle_moves_on() -> None:
    assert changes(BOTH) == [73, 110, 142, 158, 205, 228, 248, 259, 291, 308, 322]  # not 329: still 8 x 224
    assert changes(SHORT) == []


def _cfg(**values):
    cfg = get_cfg()
    for key, value in values.items():
        section, name = key.split("__")
        cfg[section][name] = value
    return cfg


def test_from_cfg_reads_the_keys() -> None:
    cfg = _cfg(
        MULTIGRID__LONG_CYCLE=True,
        MULTIGRID__EVAL_FREQ=2,
        SOLVER__STEPS=[0, 94, 154, 196],
        SOLVER__LRS=[1, 0.1, 0.01, 0.001],
        SOLVER__MAX_EPOCH=239,
        TRAIN__BATCH_SIZE=32,
        DATA__NUM_FRAMES=16,
        DATA__TRAIN_CROP_SIZE=160,
        DATA__SAMPLING_RATE=5,
    )
    s = MultigridSettings.from_cfg(cfg)
    assert (s.long_cycle, s.short_cycle, s.eval_freq, s.epoch_factor, s.bn_base_size) == (True, False, 2, 1.5, 8)
    assert s.long_cycle_factors == ((0.25, ROOT_HALF), (0.5, ROOT_HALF), (0.5, 1.0), (1.0, 1.0))
    assert s.short_cycle_factors == (0.5, ROOT_HALF)
    assert (s.batch_size, s.num_frames, s.crop_size, s.sampling_rate, s.jitter_scales) == (32, 16, 160, 5, (256, 320))
    assert (s.steps, s.lrs, s.max_epoch) == ((0, 94, 154, 196), (1, 0.1, 0.01, 0.001), 239)


@pytest.mark.parametrize(
    "values, key",
    [
        ({"SOLVER__STEPS": []}, "SOLVER.STEPS"),
        ({"SOLVER__STEPS": [0]}, "SOLVER.STEPS"),
        ({"SOLVER__STEPS": [0, 94, 94]}, "SOLVER.STEPS"),
        ({"SOLVER__STEPS": [0, 94, 239]}, "SOLVER.STEPS"),
        ({"SOLVER__LR_POLICY": "steps_with_relative_lrs", "SOLVER__LRS": [1, 0.1]}, "SOLVER.LRS"),
        ({"DATA__NUM_FRAMES": 1}, "MULTIGRID.LONG_CYCLE_FACTORS"),
        (
            {"MULTIGRID__LONG_CYCLE_FACTORS": [[1, 0.5]], "MULTIGRID__SHORT_CYCLE_FACTORS": [0.5, 1.0]},
            "MULTIGRID.SHORT_CYCLE_FACTORS",
        ),
    ],
)
def test_from_cfg_names_the_key_the_schedule_cannot_use(values: dict, key: str) -> None:
    base = {
        "MULTIGRID__LONG_CYCLE": True,
        "MULTIGRID__SHORT_CYCLE": True,
        "SOLVER__STEPS": [0, 94, 154, 196],
        "SOLVER__LRS": [1, 0.1, 0.01, 0.001],
        "SOLVER__MAX_EPOCH": 239,
    }
    MultigridSettings.from_cfg(_cfg(**base))  # the base itself is fine
    with pytest.raises(ConfigError, match=rf"^{key} = .*\(set in the defaults\)"):
        MultigridSettings.from_cfg(_cfg(**{**base, **values}))
