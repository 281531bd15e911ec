"""demo: a tiny X3D whose answers are known (flat red, green and blue map to chosen classes) over a
video that is red, then green, then blue: the labelled MP4, the windows' JSON, the timeline, the
DEMO keys, the real videos, broken files (nothing written) and a missing camera."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.cli.test_predict import CLASS_OF, COLOURS, NAMES, X3D_TINY, known_answer_checkpoint
from vov3d.cli import run_net
from vov3d.cli.demo import main
from vov3d.datasets.encode import write_video
from vov3d.inference.frame_source import FrameSource

FPS = 30
SEGMENT = 45  # frames of each colour: 1.5 s, several 8-frame windows of the tiny X3D each


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo")
    known_answer_checkpoint(root / "known.pyth")
    (root / "names.txt").write_text("\n".join(NAMES) + "\n")
    frames = np.concatenate([np.full((SEGMENT, 48, 64, 3), COLOURS[c], dtype=np.uint8) for c in CLASS_OF])
    write_video(str(root / "colours.mp4"), frames, FPS)
    return root


def demo(setup: Path, *args: str) -> int:
    return main(
        ["--cfg", X3D_TINY, "--checkpoint", str(setup / "known.pyth"), "--labels", str(setup / "names.txt"), *args]
    )


def decoded(path: Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate)


def outputs_of(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_the_labels_follow_the_video(setup: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out" / "colours.mp4"
    assert demo(setup, str(setup / "colours.mp4"), "--output", str(out), "--topk", "2") == 0
    printed = capsys.readouterr()
    assert printed.out.split() == [
        str(out),
        *(str(out.with_suffix("")) + s for s in (".timeline.png", ".windows.json")),
    ]
    assert "frames/s" in printed.err and "x real time" in printed.err
    document = json.loads(out.with_suffix(".windows.json").read_text())
    windows = document["windows"]
    assert document["window_frames"] == 8 and document["stride_frames"] == 8  # DEMO.BUFFER_SIZE 0: side by side
    assert [w["first_frame"] for w in windows] == list(range(0, 3 * SEGMENT - 7, 8)) + [3 * SEGMENT - 8]
    for w in windows:  # a window inside one colour is that colour's class, with its name
        colours = {
            c
            for i, c in enumerate(CLASS_OF)
            if w["first_frame"] < (i + 1) * SEGMENT and w["first_frame"] + 8 > i * SEGMENT
        }
        if len(colours) == 1:
            (colour,) = colours
            assert (w["top"][0]["index"], w["top"][0]["label"]) == (CLASS_OF[colour], NAMES[CLASS_OF[colour]])
            assert w["top"][0]["prob"] > 0.9
    frames, fps = decoded(out)
    assert len(frames) == 3 * SEGMENT and fps == FPS and frames.shape[1:3] == (48, 64)
    # the top of every frame is a dark band with text, the rest is the video's colour
    for i, colour in enumerate(CLASS_OF):
        frame = frames[i * SEGMENT + SEGMENT // 2].astype(int)
        assert np.abs(frame[-8:] - COLOURS[colour]).max() < 12
        assert frame[:6].mean() < np.mean(COLOURS[colour]) - 20
    # the text differs with the class drawn: compare the bands of the middle frames of two colours
    bands = [frames[i * SEGMENT + SEGMENT // 2, :20].astype(int) for i in range(3)]
    assert np.abs(bands[0] - bands[1]).max() > 100
    timeline = Image.open(out.with_suffix(".timeline.png"))
    assert timeline.format == "PNG" and timeline.width == 960


def test_output_size_rate_and_stride_follow_the_demo_keys(setup: Path, tmp_path: Path) -> None:
    out = tmp_path / "keys.mp4"
    opts = ["DEMO.INPUT_VIDEO", str(setup / "colours.mp4"), "DEMO.OUTPUT_FILE", str(out), "DEMO.DISPLAY_WIDTH", "129"]
    assert demo(setup, *opts, "DEMO.BUFFER_SIZE", "6", "DEMO.OUTPUT_FPS", "15") == 0
    frames, fps = decoded(out)
    assert frames.shape[1:3] == (96, 128) and fps == 15  # 129 wide at 4:3 is 96.75 x 129: even, 96 x 128
    starts = [w["first_frame"] for w in json.loads(out.with_suffix(".windows.json").read_text())["windows"]]
    assert starts[:3] == [0, 2, 4]  # windows of 8 sharing 6 frames


def test_a_stride_in_seconds_and_a_time_limit(setup: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.mp4"
    assert demo(setup, str(setup / "colours.mp4"), "--output", str(out), "--stride", "0.1", "--max-seconds", "1") == 0
    frames, _ = decoded(out)
    assert len(frames) == FPS
    starts = [w["first_frame"] for w in json.loads(out.with_suffix(".windows.json").read_text())["windows"]]
    assert starts == list(range(0, FPS - 7, 3)) + [FPS - 8]


@pytest.mark.parametrize(
    "opts, message",
    [
        (["DEMO.BUFFER_SIZE", "8"], "DEMO.BUFFER_SIZE"),
        (["--stride", "0.5"], "longer than the window"),
        (["--window", "2"], "--window is for datasets whose clip spans a whole video"),
        (["--gradcam", "--gradcam-layer", "s9"], "no layer 's9'"),
        (["--gradcam", "--gradcam-class", "class z"], "not a class name or index"),
        (["--gradcam", "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP", "rainbow"], "COLORMAP"),
        (["--output", "x.avi"], "DEMO.OUTPUT_FILE"),
        (["--gradcam", "--gradcam-layer", "head"], "Grad-CAM needs a N x C x T x H x W one"),
        (["--still", "4.5"], "past the end"),
    ],
)
def test_wrong_settings_are_refused_before_any_frame(
    setup: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    opts: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert demo(setup, str(setup / "colours.mp4"), *opts) == 2
    assert message in capsys.readouterr().err
    assert outputs_of(tmp_path) == []


def test_a_broken_video_is_named_and_nothing_is_written(
    setup: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    frames = np.concatenate([np.full((SEGMENT, 48, 64, 3), COLOURS[c], dtype=np.uint8) for c in CLASS_OF])
    frames[:, ::4] = 0  # texture, so the file is large enough to cut mid-stream
    write_video(str(tmp_path / "good.mp4"), frames, FPS, gop_size=10)
    good = (tmp_path / "good.mp4").read_bytes()
    files = {"empty.mp4": b"", "text.mp4": b"not a video at all\n" * 10, "truncated.mp4": good[: len(good) * 2 // 3]}
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        out = tmp_path / "out" / f"{name}.mp4"
        assert demo(setup, str(path), "--output", str(out)) == 1, name
        err = capsys.readouterr().err
        assert str(path) in err and "Traceback" not in err, err
        assert outputs_of(tmp_path / "out") == [], f"{name}: something was written"
    assert demo(setup, str(tmp_path / "missing.mp4")) == 2
    assert "missing.mp4: no such file" in capsys.readouterr().err


def test_no_camera_is_said_plainly(setup: Path, capsys: pytest.CaptureFixture) -> None:
    if os.path.exists("/dev/video9"):
        pytest.skip("this machine has a /dev/video9; the test needs a camera number that does not exist")
    assert demo(setup, "--webcam", "9") == 2
    assert "no camera /dev/video9 on this machine" in capsys.readouterr().err


def test_run_net_runs_the_demo_with_demo_enable(setup: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run_net.mp4"
    argv = ["--cfg", X3D_TINY, "DEMO.ENABLE", "True", "DEMO.INPUT_VIDEO", str(setup / "colours.mp4")]
    argv += ["TRAIN.ENABLE", "False", "TEST.ENABLE", "False"]  # as PySlowFast's demo configs
    argv += ["DEMO.OUTPUT_FILE", str(out), "TEST.CHECKPOINT_FILE_PATH", str(setup / "known.pyth")]
    argv += ["DEMO.LABEL_FILE_PATH", str(setup / "names.txt"), "DEMO.VIS_MODE", "top-k", "DEMO.THREAD_ENABLE", "True"]
    assert run_net.main(argv) == 0
    assert len(decoded(out)[0]) == 3 * SEGMENT
    windows = json.loads(out.with_suffix(".windows.json").read_text())["windows"]
    assert windows[0]["top"][0]["label"] == NAMES[CLASS_OF["red"]]


def test_every_real_video(setup: Path, real_videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Every container, codec, rate and size of ../shared/data/real-videos (the first 2 s of each)."""
    videos = sorted(p for p in real_videos.iterdir() if p.suffix in (".mp4", ".mkv", ".avi", ".webm"))
    assert len(videos) >= 5
    for video in videos:
        out = tmp_path / f"{video.stem}.mp4"
        assert demo(setup, str(video), "--output", str(out), "--max-seconds", "2", "--width", "160") == 0, video.name
        frames, _ = decoded(out)
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            count = sum(1 for _ in container.decode(stream))
            expected = min(count, math.ceil(2 * float(stream.average_rate)))
        assert len(frames) == expected and frames.shape[2] == 160, video.name
        assert len(json.loads(out.with_suffix(".windows.json").read_text())["windows"]) >= 1
    capsys.readouterr()


def test_gradcam_outputs(setup: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("captum", reason="needs captum (pip install -e '.[vis]')")
    out = tmp_path / "cam.mp4"
    args = ["--output", str(out), "--gradcam", "--gradcam-class", NAMES[2], "--gradcam-layer", "s4/pathway0_res0"]
    assert demo(setup, str(setup / "colours.mp4"), *args) == 0
    windows = json.loads(out.with_suffix(".windows.json").read_text())["windows"]
    frames, _ = decoded(out.with_suffix(".gradcam.mp4"))
    assert len(frames) == len(windows) * 4  # each window's 4-frame clip
    strip = Image.open(out.with_suffix(".gradcam.png"))
    assert strip.format == "PNG" and strip.height > 8 * 96  # 8 rows of clips


def test_a_still_of_the_labelled_video(setup: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "still.mp4"
    assert demo(setup, str(setup / "colours.mp4"), "--output", str(out), "--still", "2.0") == 0
    still = out.with_suffix(".still.png")
    assert str(still) in capsys.readouterr().out.split()
    image = np.asarray(Image.open(still).convert("RGB")).astype(int)
    frames, _ = decoded(out)
    differences = [np.abs(frame.astype(int) - image).mean() for frame in frames]
    # frame 60 (2.0 s) is green; frames of one colour differ only by the time drawn on them
    assert SEGMENT <= int(np.argmin(differences)) < 2 * SEGMENT and min(differences) < 15
    assert np.abs(image[-4:] - COLOURS["green"]).max() < 12 and image[:6].mean() < 100  # the band: 42 of 48 rows


def test_outputs_that_cannot_be_written(setup: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    assert demo(setup, str(setup / "colours.mp4"), "--output", str(tmp_path / "file" / "out.mp4")) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "out.mp4" in err and "Traceback" not in err
    assert outputs_of(tmp_path) == ["file"]


def test_something_something_windows_take_the_test_s_temporal_views(setup: Path, tmp_path: Path) -> None:
    """Where a clip spans a whole video, a window of --window seconds is a video to the test: its
    TEST.NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS views."""
    out = tmp_path / "ss.mp4"
    assert demo(setup, str(setup / "colours.mp4"), "--output", str(out), "--window", "1", "TEST.DATASET", "ssv2") == 0
    document = json.loads(out.with_suffix(".windows.json").read_text())
    assert (document["window_frames"], document["stride_frames"], document["views"]) == (30, 30, 2 * 3)
    assert [w["first_frame"] for w in document["windows"]] == [0, 30, 60, 90, 105]


class FakeCamera:
    """A camera of ``count`` frames that sends this process SIGINT (Ctrl-C) when frame ``stop_at`` is read."""

    def __init__(self, count: int, stop_at: int) -> None:
        self.count, self.stop_at, self.closed = count, stop_at, False

    def decode(self, video: int):
        for i in range(self.count):
            if i == self.stop_at:
                os.kill(os.getpid(), signal.SIGINT)
            yield av.VideoFrame.from_ndarray(np.full((48, 64, 3), COLOURS["red"], dtype=np.uint8), format="rgb24")

    def close(self) -> None:
        self.closed = True


def test_ctrl_c_ends_a_live_run_and_keeps_what_it_saw(
    setup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    camera = FakeCamera(1000, stop_at=20)
    monkeypatch.setattr(
        FrameSource, "camera", classmethod(lambda cls, index, fps: cls("webcam3", 30.0, (48, 64), None, camera))
    )
    out = tmp_path / "live.mp4"
    assert demo(setup, "--webcam", "3", "--output", str(out)) == 0
    assert "Ctrl-C" in capsys.readouterr().err and camera.closed
    frames, _ = decoded(out)
    assert len(frames) in (20, 21)  # the frames read before the signal was handled
    windows = json.loads(out.with_suffix(".windows.json").read_text())["windows"]
    assert windows[0]["top"][0]["label"] == NAMES[CLASS_OF["red"]]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "Ctrl-C's own handler not restored"
