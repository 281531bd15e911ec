"""Bar charts drawn with Pillow: bar lengths in pixels follow the values."""

from __future__ import annotations

import pytest
import torch

from vov3d.visualization.figures import BAR_COLOUR, HIGHLIGHT_COLOUR, bar_chart


def bar_rows(image: torch.Tensor, colour: tuple[int, int, int]) -> list[int]:
    """The length in pixels of each bar of ``colour``, top to bottom (one entry per bar)."""
    lengths = (image == torch.tensor(colour, dtype=torch.uint8)).all(dim=-1).sum(dim=1).tolist()
    bars, previous = [], 0
    for length in lengths:
        if length and length != previous:
            bars.append(length)
        previous = length
    return bars


def test_bars_are_proportional_to_the_values_and_the_highlighted_one_is_green() -> None:
    image = bar_chart([8, 4, 0, 2], ["a", "b", "c", "d"], "title", highlight=1, length=200)
    assert image.dtype == torch.uint8 and image.shape[2] == 3
    assert bar_rows(image, BAR_COLOUR) == [200, 50]  # a and d; c's 0 draws no bar
    assert bar_rows(image, HIGHLIGHT_COLOUR) == [100]
    wider = bar_chart([8, 4, 0, 2], ["a much longer label", "b", "c", "d"], "title", highlight=1, length=200)
    assert wider.shape[1] > image.shape[1]  # the labels are drawn, beside the bars
    assert wider.shape[0] == image.shape[0] and bar_rows(wider, BAR_COLOUR) == [200, 50]


def test_every_value_needs_a_label() -> None:
    with pytest.raises(ValueError, match="2 values but 1 labels"):
        bar_chart([1, 2], ["a"], "title")
