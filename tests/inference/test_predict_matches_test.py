"""predict gives each video the probabilities that run_net's test gives it: for every dataset kind
(and Kinetics's offset sampling) and for 1 and 3 spatial crops, the same checkpoint and files give
the same per-video scores.

The frames are textured (not flat), so that another resize or crop changes the answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import CONFIGS
from tests.datasets.helpers import make_ssv1, make_ssv2
from tests.helpers import write_kinetics_csvs
from vov3d.checkpoint import save_checkpoint
from vov3d.config import CfgNode, load_config
from vov3d.datasets.encode import write_video
from vov3d.engine import evaluate
from vov3d.inference import load_trained_model, predict_videos
from vov3d.models import build_model

X3D_TINY = str(CONFIGS / "quick" / "x3d_tiny.yaml")
CLASSES = 3  # the three templates of the SS layouts
SS_FRAMES = {"1001": 24, "1002": 40, "1003": 9}
SIZE = (48, 64)


def textured_frames(count: int, seed: int) -> np.ndarray:
    """uint8 T x H x W x 3 waves that move from frame to frame: any two crops or scales differ."""
    y, x = np.mgrid[: SIZE[0], : SIZE[1]]
    t = np.arange(count)[:, None, None]
    waves = [np.sin((x + 3 * t + 7 * seed) / (3 + c)) * np.cos((y - 2 * t + seed) / (4 + c)) for c in range(3)]
    return (128 + 100 * np.stack(waves, axis=-1)).round().astype(np.uint8)


def write_textured_video(path: Path, count: int, seed: int, fps: float = 30) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libvpx-vp9" if path.suffix == ".webm" else "libx264"
    write_video(str(path), textured_frames(count, seed), fps, codec=codec)
    return str(path)


def texture_frame_folders(frames: Path) -> None:
    """Paint textured frames over the numbered JPEGs of every video folder under ``frames``."""
    for seed, folder in enumerate(sorted(frames.iterdir())):
        files = sorted(folder.glob("*.jpg"))
        for file, frame in zip(files, textured_frames(len(files), seed)):
            Image.fromarray(frame).save(file, quality=95)


def kinetics(root: Path) -> tuple[str, Path]:
    rows = [(Path(write_textured_video(root / "videos" / f"{k}.mp4", 40 + 10 * k, k)).name, k) for k in range(3)]
    write_kinetics_csvs(root, rows)
    return "kinetics", root / "videos"


def folder(root: Path) -> tuple[str, Path]:
    for split in ("train", "test"):
        for k in range(CLASSES):
            write_textured_video(root / split / f"class{k}" / "v.mp4", 30 + 10 * k, k)
    return "folder", root


def ssv1(root: Path) -> tuple[str, Path]:
    make_ssv1(root, SS_FRAMES)
    texture_frame_folders(root / "frames")
    return "ssv1", root / "frames"


def ssv2_frames(root: Path) -> tuple[str, Path]:
    make_ssv2(root, SS_FRAMES, frames=True)
    texture_frame_folders(root / "frames")
    return "ssv2", root / "frames"


def ssv2_webm(root: Path) -> tuple[str, Path]:
    make_ssv2(root, SS_FRAMES, frames=False, webm=False)
    for seed, (video, count) in enumerate(SS_FRAMES.items()):
        write_textured_video(root / "videos" / f"{video}.webm", count, seed, fps=12)
    return "ssv2", root / "videos"


# name: the layout writer and the config options that go with it
LAYOUTS = {
    **{f.__name__: (f, []) for f in (kinetics, ssv1, ssv2_frames, ssv2_webm, folder)},
    "kinetics_offset_sampling": (kinetics, ["DATA.USE_OFFSET_SAMPLING", "True"]),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny X3D of three classes whose classifier is scaled up, so that its probabilities
    are far from uniform and follow the pixels closely."""
    path = tmp_path_factory.mktemp("model") / "x3d.pyth"
    cfg = load_config([X3D_TINY], ["MODEL.NUM_CLASSES", str(CLASSES)])
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        model.head.projection.weight.mul_(100.0)
    save_checkpoint(str(path), model)  # no cfg: each dataset kind would be warned about as another config
    return path


@pytest.fixture(scope="module", params=list(LAYOUTS))
def data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Config overrides that point at one dataset kind, written once per module."""
    write, options = LAYOUTS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    name, prefix = write(root)
    return ["TRAIN.DATASET", name, "TEST.DATASET", name, "DATA.PATH_TO_DATA_DIR", str(root),
            "DATA.PATH_PREFIX", str(prefix), *options]  # fmt: skip


def cfg_for(data: list[str], checkpoint: Path, output_dir: Path, crops: int) -> CfgNode:
    opts = [*data, "MODEL.NUM_CLASSES", CLASSES, "TEST.NUM_SPATIAL_CROPS", crops, "TEST.CHECKPOINT_FILE_PATH",
            checkpoint, "OUTPUT_DIR", output_dir, "TEST.SAVE_RESULTS_PATH", "results.pyth"]  # fmt: skip
    return load_config([X3D_TINY], [str(o) for o in opts])


@pytest.mark.parametrize("crops", [1, 3])
def test_predict_gives_the_tests_probabilities(data: list[str], checkpoint: Path, tmp_path: Path, crops: int) -> None:
    cfg = cfg_for(data, checkpoint, tmp_path, crops)
    evaluate.test(cfg)
    saved = torch.load(tmp_path / "results.pyth", weights_only=True)
    assert saved["ensemble_method"] == "sum" and len(saved["paths"]) == 3
    model = load_trained_model(cfg, str(checkpoint), torch.device("cpu"))
    predictions = list(predict_videos(model, cfg, saved["paths"], torch.device("cpu")))
    assert [p.error for p in predictions] == [None] * 3
    assert [p.views for p in predictions] == saved["views"].tolist() == [2 * crops] * 3
    expected = saved["scores"] / saved["views"].unsqueeze(1)  # the test sums the views, predict reports the mean
    assert expected.max() - expected.min() > 0.1  # far from uniform: a wrong crop would show
    torch.testing.assert_close(torch.stack([p.scores for p in predictions]), expected, rtol=1e-4, atol=1e-5)
