"""The confusion-matrix PNG: written with Pillow and read back pixel for pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vov3d.utils.tensorboard import labelled_heat_map, write_png


def test_write_png_round_trips_every_pixel(tmp_path: Path) -> None:
    image = labelled_heat_map(torch.tensor([[3, 1], [0, 4]]), ["left", "right"])
    image[0, 0] = torch.tensor([1, 2, 3], dtype=torch.uint8)  # a colour the heat map never has
    write_png(str(tmp_path / "m.png"), image)
    with Image.open(tmp_path / "m.png") as png:
        assert (png.format, png.mode, png.size) == ("PNG", "RGB", (image.shape[1], image.shape[0]))
        assert np.array_equal(np.asarray(png), image.numpy())


def test_write_png_refuses_what_is_not_an_rgb_byte_image(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"m\.png: expected a uint8 H x W x 3 image, got torch.float32 \(2, 2, 3\)"):
        write_png(str(tmp_path / "m.png"), torch.zeros(2, 2, 3))
