"""The confusion-matrix PNG and the GIF summaries of clips: written with Pillow and read back
pixel for pixel."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vov3d.utils.tensorboard import add_gif, encode_gif, heat_map, labelled_heat_map, write_png


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


def test_a_sub_matrix_is_numbered_with_its_classes_and_shaded_by_whole_rows() -> None:
    sub = torch.tensor([[2, 0], [0, 4]])
    image = labelled_heat_map(sub, ["yellow", "red"], indices=[3, 0], totals=torch.tensor([4, 4]))
    assert torch.equal(image[-400:, -400:], heat_map(torch.tensor([[0.5, 0.0], [0.0, 1.0]])))
    renumbered = labelled_heat_map(sub, ["yellow", "red"], indices=[7, 0], totals=torch.tensor([4, 4]))
    assert not torch.equal(image, renumbered)  # the class numbers are drawn
    with pytest.raises(ValueError, match="1 class indices for a 2-class"):
        labelled_heat_map(sub, ["yellow", "red"], indices=[3])


def test_a_gif_summary_plays_every_frame_back(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    palette = torch.randint(0, 256, (20, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    frames = palette[torch.randint(0, 20, (5, 24, 32), generator=torch.Generator().manual_seed(1))]
    writer = SummaryWriter(str(tmp_path))
    add_gif(writer, "clip", frames, fps=4, step=7)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    events = EventAccumulator(str(path), size_guidance={"images": 0})
    events.Reload()
    (event,) = events.Images("clip")
    assert (event.step, event.height, event.width) == (7, 24, 32)
    with Image.open(io.BytesIO(event.encoded_image_string)) as gif:
        assert (gif.format, gif.n_frames, gif.info["loop"]) == ("GIF", 5, 0)
        for t in range(5):
            gif.seek(t)
            assert gif.info["duration"] == 250
            assert np.array_equal(np.asarray(gif.convert("RGB")), frames[t].numpy())  # 20 colours: exact


def test_encode_gif_refuses_what_is_not_a_clip_of_rgb_bytes() -> None:
    with pytest.raises(ValueError, match=r"expected uint8 T x H x W x 3 frames, got torch.float32 \(2, 4, 4, 3\)"):
        encode_gif(torch.zeros(2, 4, 4, 3), fps=8)
