"""TensorBoard figures of validation, the test and the visualisation pass after it (PySlowFast's
TENSORBOARD keys), read back from the event files: confusion matrices, prediction histograms,
Grad-CAM, input and misclassified clips as GIFs, weight histograms, and the config errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tests.engine.conftest import COLOURS, free_port, quick_cfg
from tests.engine.test_evaluate import Items, ScoreTable
from tests.helpers import write_kinetics_csvs
from vov3d.checkpoint import save_checkpoint
from vov3d.config import CfgNode, ConfigError
from vov3d.datasets import build_dataset
from vov3d.datasets.encode import write_video
from vov3d.engine import evaluate, launch
from vov3d.engine.class_figures import ClassFigures, most_confused, prediction_histogram
from vov3d.engine.evaluate import validate
from vov3d.engine.launch import ProcessPlan
from vov3d.engine.runtime import Execution, prepare_model
from vov3d.engine.visualize import check_visualize_cfg, visualize
from vov3d.utils.logging import StatsLog
from vov3d.utils.run_layout import RunFolder
from vov3d.utils.tensorboard import heat_map, labelled_heat_map
from vov3d.visualization.figures import BAR_COLOUR, HIGHLIGHT_COLOUR

NAMES = ["red ball", "green leaf", "blue sky", "yellow sun"]
TAG = "Incorrectly classified videos."


@pytest.fixture(scope="module")
def moving_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes, the label the background colour, a white square moving 2 pixels a frame (so
    that no two frames of a clip are alike); 8 train, 4 val and 4 test videos (test video k of
    class k), and classes.txt naming the classes."""
    root = tmp_path_factory.mktemp("moving")
    for split, per_class in {"train": 2, "val": 1, "test": 1}.items():
        (root / split).mkdir()
        rows = []
        for i in range(4 * per_class):
            frames = np.broadcast_to(np.array(COLOURS[i % 4], dtype=np.uint8), (16, 40, 48, 3)).copy()
            for t in range(16):
                frames[t, 16:24, 2 * t : 2 * t + 8] = 255
            write_video(str(root / split / f"{i:03d}.mp4"), frames, 30)
            rows.append((f"{split}/{i:03d}.mp4", i % 4))
        write_kinetics_csvs(root, rows, splits=[split])
    (root / "classes.txt").write_text("\n".join(NAMES) + "\n")
    return root


def read_events(folder: Path) -> dict[str, Any]:
    """{"images": {tag: [(step, encoded image)]}, "histograms": {tags}} of every event file in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images: dict[str, list[tuple[int, bytes]]] = {}
    histograms: set[str] = set()
    for path in sorted(folder.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"images": 0, "histograms": 0})
        events.Reload()
        for tag in events.Tags()["images"]:
            images.setdefault(tag, []).extend((e.step, e.encoded_image_string) for e in events.Images(tag))
        histograms.update(events.Tags()["histograms"])
    return {"images": images, "histograms": histograms}


def decoded(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


def gif_frames(encoded: bytes) -> np.ndarray:
    """The frames of an animated GIF, T x H x W x 3; fails unless it is a GIF."""
    with Image.open(io.BytesIO(encoded)) as gif:
        assert gif.format == "GIF"
        frames = []
        for t in range(gif.n_frames):
            gif.seek(t)
            frames.append(np.asarray(gif.convert("RGB")))
    return np.stack(frames)


def board_dir(cfg: CfgNode) -> Path:
    return Path(RunFolder(cfg.OUTPUT_DIR).tensorboard_dir("kinetics"))


def test_a_run_writes_the_figures_of_every_validation_the_test_and_grad_cam(moving_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("captum", reason="needs captum (pip install -e '.[vis]')")
    cfg = quick_cfg(
        moving_data, tmp_path, "SOLVER.MAX_EPOCH", 2, "TENSORBOARD.ENABLE", True,
        "TENSORBOARD.CONFUSION_MATRIX.ENABLE", True, "TENSORBOARD.HISTOGRAM.ENABLE", True,
        "TENSORBOARD.HISTOGRAM.TOPK", 3, "TENSORBOARD.MODEL_VIS.ENABLE", True,
        "TENSORBOARD.MODEL_VIS.INPUT_VIDEO", True, "TENSORBOARD.MODEL_VIS.MODEL_WEIGHTS", True,
        "TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST", "['s4', 's5/pathway0_res1']", "TENSORBOARD.VIS_MAX_VIDEOS", 3,
    )  # fmt: skip
    assert launch.run_jobs(cfg) == 0
    events = read_events(board_dir(cfg))
    images = events["images"]
    assert [step for step, _ in images["val/confusion_matrix"]] == [1, 2]
    assert "val/confusion_matrix_subset" not in images  # 4 classes: the whole matrix is named
    for split, steps in (("val", [1, 2]), ("test", [0])):
        for k, name in enumerate(NAMES):  # every class has a video in both splits
            assert [step for step, _ in images[f"{split}/top3_predictions/{k}_{name}"]] == steps
    (_, full), *_ = images["test/confusion_matrix"]
    assert decoded(full).shape[1] > 400  # labelled with the names of classes.txt, wider than the cells

    for layer in ("s4", "s5/pathway0_res1"):
        tags = sorted(tag for tag in images if tag.startswith(f"grad_cam/{layer}/"))
        assert [tag.split("/")[-1].split(" ")[0] for tag in tags] == ["0", "1", "2"]  # VIS_MAX_VIDEOS
        assert all(" (predicted " in tag for tag in tags)
        for tag in tags:
            (_, gif), *_ = images[tag]
            assert gif_frames(gif).shape == (4, 32, 32, 3)  # NUM_FRAMES of TEST_CROP_SIZE
    dataset = build_dataset(cfg, "test")
    for video in range(3):
        (_, gif), *_ = images[f"input/{video} ({NAMES[video]})"]
        clip = dataset[video * 6 + 4][0].numpy()  # the middle temporal view (1 of 2), centre crop (1 of 3)
        assert np.abs(gif_frames(gif).astype(int) - clip).mean() < 2  # the clip itself, up to GIF colours
        (cam,) = [tag for tag in images if tag.startswith(f"grad_cam/s4/{video} ")]
        assert np.abs(gif_frames(images[cam][0][1]).astype(int) - clip).mean() > 20  # a heat map over it
    model = prepare_model(cfg, torch.device("cpu"), train=False)
    assert events["histograms"] == {f"weights/{name}" for name, _ in model.named_parameters()}


def test_the_validation_confusion_figure_shows_the_clips_predictions(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    table = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])  # predictions 0, 0, 1
    loader = DataLoader(Items([0, 1, 1], [0, 1, 2, 1]), batch_size=2)  # item 1 repeated: counted once
    figures = ClassFigures(["left", "right"], True, None, True, None, 5)
    cfg = quick_cfg(tmp_path, tmp_path)
    writer = SummaryWriter(str(tmp_path / "board"))
    validate(ScoreTable(table), loader, 2, 4, Execution.from_cfg(cfg), StatsLog(None, 1, writer), figures)
    writer.close()
    images = read_events(tmp_path / "board")["images"]
    confusion = torch.tensor([[1, 0], [1, 1]])
    ((step, image),) = images["val/confusion_matrix"]
    assert step == 3 and np.array_equal(decoded(image), labelled_heat_map(confusion, ["left", "right"]).numpy())
    ((step, image),) = images["val/top5_predictions/1_right"]
    histogram = prediction_histogram(confusion, 1, ["left", "right"], 5)
    assert step == 3 and np.array_equal(decoded(image), histogram.numpy())


def test_a_prediction_histogram_shows_the_topk_counts_the_right_class_in_green() -> None:
    confusion = torch.tensor([[3, 0, 1, 2], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    image = prediction_histogram(confusion, 0, NAMES, topk=2).numpy()

    def bar_lengths(colour: tuple[int, int, int]) -> list[int]:
        return sorted(set((image == colour).all(axis=-1).sum(axis=1).tolist()) - {0})

    assert bar_lengths(HIGHLIGHT_COLOUR) == [320]  # class 0's 3 videos predicted right: the longest bar
    assert bar_lengths(BAR_COLOUR) == [213]  # 2 taken for class 3; the 1 for class 2 is beyond topk 2
    assert prediction_histogram(confusion, 2, NAMES, topk=2) is None  # no videos: no figure


def test_most_confused_counts_rows_and_columns_and_prefers_lower_indices() -> None:
    confusion = torch.diag(torch.full((45,), 10))
    for i in range(5, 45):  # classes 5..44 each take one video of the next and give one away
        confusion[i, 5 + (i - 4) % 40] += 1
    confusion[44, 2] = 5  # class 2: errors only in its column
    # 41 classes have errors; 5..43 have 2 each, so the last of them, 43, is left out
    assert most_confused(confusion, 40) == [2, *range(5, 43), 44]


def write_subset(path: Path, *names: str) -> Path:
    path.write_text("".join(f"{name}\n" for name in names))
    return path


def test_the_subset_figure_names_exactly_the_subset_and_counts_every_prediction(
    moving_data: Path, tmp_path: Path
) -> None:
    subset = write_subset(tmp_path / "subset.txt", "yellow sun", "", "red ball")
    cfg = quick_cfg(
        moving_data, tmp_path, "TENSORBOARD.ENABLE", True, "TENSORBOARD.CONFUSION_MATRIX.ENABLE", True,
        "TENSORBOARD.CONFUSION_MATRIX.SUBSET_PATH", subset,
    )  # fmt: skip
    figures = ClassFigures.from_cfg(cfg, NAMES)
    confusion = torch.tensor([[4, 0, 0, 0], [0, 4, 0, 0], [0, 0, 4, 0], [0, 2, 0, 2]])  # half of class 3 as class 1
    images = dict(figures.images(confusion))
    assert sorted(images) == ["confusion_matrix", "confusion_matrix_subset"]
    figure = images["confusion_matrix_subset"]
    sub, totals = torch.tensor([[2, 0], [0, 4]]), torch.tensor([4, 4])  # rows and columns yellow sun, red ball
    assert torch.equal(figure, labelled_heat_map(sub, ["yellow sun", "red ball"], indices=[3, 0], totals=totals))
    assert not torch.equal(figure, labelled_heat_map(sub, ["blue sky", "red ball"], indices=[3, 0], totals=totals))
    assert torch.equal(figure[-400:, -400:], heat_map(torch.tensor([[0.5, 0], [0, 1]])))  # yellow sun: half right


def test_a_subset_file_naming_an_unknown_class_is_an_error_with_key_file_and_line(
    moving_data: Path, tmp_path: Path
) -> None:
    subset = write_subset(tmp_path / "subset.txt", "red ball", "", "yelow sun")
    cfg = quick_cfg(
        moving_data, tmp_path, "TENSORBOARD.ENABLE", True, "TENSORBOARD.HISTOGRAM.ENABLE", True,
        "TENSORBOARD.HISTOGRAM.SUBSET_PATH", subset,
    )  # fmt: skip
    with pytest.raises(ConfigError) as error:
        ClassFigures.from_cfg(cfg, NAMES)
    message = str(error.value)
    assert message.startswith("TENSORBOARD.HISTOGRAM.SUBSET_PATH = ")
    assert f"{subset}:3: no class is named 'yelow sun'; did you mean 'yellow sun'?" in message


def combined(scores: list[list[float]], scored: list[bool]) -> evaluate.TestResult:
    """A TestResult of the 4 test videos (labels 0..3) with these combined scores."""
    return evaluate.TestResult(
        torch.tensor(scores), torch.arange(4), torch.ones(4, dtype=torch.long), torch.zeros(4, dtype=torch.long),
        torch.tensor(scored), 0.0, 0.0, 0.0, torch.zeros(4, 4, dtype=torch.long),
    )  # fmt: skip


def always_class_2(moving_data: Path, tmp_path: Path) -> Path:
    """A checkpoint of the quick network whose classifier predicts class 2 for any clip."""
    cfg = quick_cfg(moving_data, tmp_path)
    model = prepare_model(cfg, torch.device("cpu"), train=False)
    classifier = model.get_classifier()
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0]))
    path = tmp_path / "always2.pyth"
    save_checkpoint(str(path), model, cfg=cfg)
    return path


def wrong_prediction_tags(
    moving_data: Path, tmp_path: Path, result: evaluate.TestResult, *opts: Any
) -> dict[str, bytes]:
    """The GIFs the visualisation pass writes by tag, over the 4 test videos judged by ``result``."""
    cfg = quick_cfg(
        moving_data, tmp_path, "TEST.CHECKPOINT_FILE_PATH", always_class_2(moving_data, tmp_path),
        "TENSORBOARD.ENABLE", True, "TENSORBOARD.WRONG_PRED_VIS.ENABLE", True, *opts,
    )  # fmt: skip
    visualize(cfg, result)
    images = read_events(board_dir(cfg))["images"]
    return {tag: encoded for tag, ((_, encoded),) in images.items()}


def test_wrong_predictions_show_the_misclassified_videos_only(moving_data: Path, tmp_path: Path) -> None:
    # Videos 0 and 2 have no combined score: judged by their one view, which the model takes for
    # class 2 (video 0 wrong, video 2 right); video 1 right and video 3 wrong by the test's scores.
    result = combined([[0, 0, 0, 0], [0, 0.9, 0.1, 0], [0, 0, 0, 0], [0.8, 0, 0.1, 0.1]], [False, True, False, True])
    tags = wrong_prediction_tags(moving_data, tmp_path, result)
    assert sorted(tags) == [
        f"{TAG}/0 (true red ball, predicted blue sky)",
        f"{TAG}/3 (true yellow sun, predicted red ball)",
    ]
    dataset = build_dataset(quick_cfg(moving_data, tmp_path), "test")
    for video, encoded in zip((0, 3), [tags[tag] for tag in sorted(tags)]):
        frames = gif_frames(encoded)
        assert frames.shape == (4, 32, 32, 3)  # every frame of the clip, none merged
        assert np.abs(frames.astype(int) - dataset[video * 6 + 4][0].numpy()).mean() < 2


def test_wrong_predictions_of_the_subset_classes_at_most_vis_max_videos(moving_data: Path, tmp_path: Path) -> None:
    everything_wrong = combined([[0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], [True] * 4)
    subset = write_subset(tmp_path / "subset.txt", "yellow sun", "green leaf", "blue sky")
    tags = wrong_prediction_tags(
        moving_data, tmp_path, everything_wrong, "TENSORBOARD.WRONG_PRED_VIS.SUBSET_PATH", subset,
        "TENSORBOARD.VIS_MAX_VIDEOS", 2,
    )  # fmt: skip
    assert [tag.split(" (")[0] for tag in sorted(tags)] == [f"{TAG}/1", f"{TAG}/2"]


def test_a_bad_colour_map_stops_the_run_before_training(
    moving_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = quick_cfg(
        moving_data, tmp_path, "TENSORBOARD.ENABLE", True, "TENSORBOARD.MODEL_VIS.ENABLE", True,
        "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP", "rainbow",
    )  # fmt: skip
    assert launch.run_jobs(cfg) == 1
    error = capsys.readouterr().err
    assert "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP = 'rainbow'" in error
    assert "must be one of viridis, jet, inferno, gray" in error
    assert not RunFolder(str(tmp_path)).read_stats("train_iter")  # nothing trained


def test_a_layer_the_model_does_not_have_is_an_error_naming_the_key(moving_data: Path, tmp_path: Path) -> None:
    cfg = quick_cfg(
        moving_data, tmp_path, "TENSORBOARD.ENABLE", True, "TENSORBOARD.MODEL_VIS.ENABLE", True,
        "TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST", "['s5', 's6']",
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST = \['s5', 's6'\].*no layer 's6'"):
        check_visualize_cfg(cfg)


@pytest.mark.timeout(300)
def test_two_processes_visualise_once_and_neither_waits_on_the_other(moving_data: Path, tmp_path: Path) -> None:
    """Two gloo processes: both load the tested model and check the keys, then rank 0 alone writes
    the figures (every test video: VIS_MAX_VIDEOS 0) while rank 1 ends its run; a subset file with
    an unknown class stops both with the error, neither left waiting at a barrier."""
    pytest.importorskip("captum", reason="needs captum (pip install -e '.[vis]')")
    checkpoint = always_class_2(moving_data, tmp_path)
    opts = [
        "TRAIN.ENABLE", False, "TEST.CHECKPOINT_FILE_PATH", checkpoint, "TENSORBOARD.ENABLE", True,
        "TENSORBOARD.MODEL_VIS.ENABLE", True, "TENSORBOARD.WRONG_PRED_VIS.ENABLE", True,
        "TENSORBOARD.VIS_MAX_VIDEOS", 0, "NUM_GPUS", 0,
    ]  # fmt: skip
    cfg = quick_cfg(moving_data, tmp_path / "two", *opts)
    plan = ProcessPlan("spawn", 2, 2, 0, 0, "gloo", f"tcp://127.0.0.1:{free_port()}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        assert launch.launch(cfg, plan) == 0
    images = read_events(board_dir(cfg))["images"]
    assert sorted(tag.split("/")[-1].split(" ")[0] for tag in images if tag.startswith("grad_cam/")) == [
        "0",
        "1",
        "2",
        "3",
    ]
    wrong = sorted(tag.split("/")[-1].split(" ")[0] for tag in images if tag.startswith(TAG))
    assert wrong == ["0", "1", "3"]  # every video but the one of class 2, each once
    subset = write_subset(tmp_path / "subset.txt", "red bal")
    cfg = quick_cfg(moving_data, tmp_path / "bad", *opts, "TENSORBOARD.WRONG_PRED_VIS.SUBSET_PATH", subset)
    plan = ProcessPlan("spawn", 2, 2, 0, 0, "gloo", f"tcp://127.0.0.1:{free_port()}")
    assert launch.launch(cfg, plan) != 0
