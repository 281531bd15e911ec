"""predict: a tiny X3D whose answers are known (flat red, green and blue videos map to chosen
classes), JSON and text output, label files, folders, broken files among good ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import CONFIGS, REPO
from vov3d.checkpoint import save_checkpoint
from vov3d.cli.predict import main, parse_args, setup_cfg
from vov3d.config import load_config
from vov3d.datasets import AnnotationError
from vov3d.datasets.class_names import read_class_names
from vov3d.datasets.encode import write_video
from vov3d.models import build_model
from vov3d.utils.run_layout import RunFolder

X3D_TINY = str(CONFIGS / "quick" / "x3d_tiny.yaml")
COLOURS = {"red": (220, 20, 20), "green": (20, 200, 30), "blue": (20, 30, 220)}
CLASS_OF = {"red": 5, "green": 2, "blue": 7}  # of the 8 classes of the quick configs
NAMES = [f"class {chr(ord('a') + i)}" for i in range(8)]


def flat_clip(rgb: tuple[int, int, int], cfg) -> torch.Tensor:
    """A normalised 1 x 3 x T x crop x crop clip of one colour: every test view of a flat video."""
    mean, std = torch.tensor(cfg.DATA.MEAN), torch.tensor(cfg.DATA.STD)
    pixel = (torch.tensor(rgb, dtype=torch.float32) / 255 - mean) / std
    size = cfg.DATA.TEST_CROP_SIZE
    return pixel.view(1, 3, 1, 1, 1).expand(1, 3, cfg.DATA.NUM_FRAMES, size, size).contiguous()


def known_answer_checkpoint(path: Path) -> None:
    """A random tiny X3D whose classifier is solved so that each colour's features give logit 20
    for its class and 0 for the others (least-norm solution through the feature vectors)."""
    cfg = load_config([X3D_TINY])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    features = []
    hook = model.head.projection.register_forward_pre_hook(lambda m, args: features.append(args[0].flatten(0, -2)[0]))
    with torch.no_grad():
        for colour in CLASS_OF:
            model(flat_clip(COLOURS[colour], cfg))
    hook.remove()
    targets = torch.zeros(cfg.MODEL.NUM_CLASSES, len(CLASS_OF))
    for column, colour in enumerate(CLASS_OF):
        targets[CLASS_OF[colour], column] = 20.0
    with torch.no_grad():
        model.head.projection.weight.copy_(targets @ torch.linalg.pinv(torch.stack(features, dim=1)))
        model.head.projection.bias.zero_()
    save_checkpoint(str(path), model, cfg=cfg)


def flat_video(path: Path, colour: str, codec: str = "libx264") -> str:
    frames = np.empty((12, 40, 56, 3), dtype=np.uint8)
    frames[:] = COLOURS[colour]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(str(path), frames, fps=30, codec=codec)
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    known_answer_checkpoint(root / "known.pyth")
    videos = root / "videos"
    flat_video(videos / "a_red.mp4", "red")
    flat_video(videos / "b_green.webm", "green", codec="libvpx-vp9")
    flat_video(videos / "sub" / "c_blue.mp4", "blue")
    (videos / "notes.txt").write_text("not a video")
    broken = root / "broken"
    broken.mkdir()
    (broken / "empty.mp4").write_bytes(b"")
    data = (videos / "a_red.mp4").read_bytes()
    (broken / "truncated.mp4").write_bytes(data[: len(data) // 2])  # H.264 in MP4: the index is at the end
    return {"root": root, "ckpt": root / "known.pyth", "videos": videos, "broken": broken}


def run_main(setup: dict[str, Path], capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["--cfg", X3D_TINY, "--checkpoint", str(setup["ckpt"]), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_folder_json_gives_the_known_classes(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    labels = setup["root"] / "ssv2-labels.json"  # SSv2 form: {template: "id"}, in any order
    labels.write_text(json.dumps({name: str(i) for i, name in reversed(list(enumerate(NAMES)))}))
    code, out, _ = run_main(setup, capsys, "--json", "--labels", str(labels), str(setup["videos"]))
    assert code == 0
    entries = json.loads(out)
    videos = setup["videos"]
    assert [e["video"] for e in entries] == [str(videos / "a_red.mp4"), str(videos / "b_green.webm"),
                                             str(videos / "sub" / "c_blue.mp4")]  # fmt: skip
    for entry, colour in zip(entries, CLASS_OF):
        assert set(entry) == {"video", "top", "views"} and entry["views"] == 2 * 3  # the quick config's views
        assert [set(t) for t in entry["top"]] == [{"index", "label", "prob"}] * 5
        best = entry["top"][0]
        assert (best["index"], best["label"]) == (CLASS_OF[colour], NAMES[CLASS_OF[colour]])
        assert best["prob"] > 0.99
        probs = [t["prob"] for t in entry["top"]]
        assert probs == sorted(probs, reverse=True)


def test_broken_files_are_reported_and_the_rest_continue(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    red, broken = setup["videos"] / "a_red.mp4", setup["broken"]
    paths = [str(red), str(broken / "empty.mp4"), str(broken / "truncated.mp4"), str(broken / "missing.mp4")]
    code, out, err = run_main(
        setup, capsys, "--json", "--topk", "1", "--workers", "1", *paths, str(setup["root"] / "broken")
    )
    assert code == 1
    entries = json.loads(out)  # stdout holds the JSON document only
    assert [e["video"] for e in entries] == paths + [str(broken / "empty.mp4"), str(broken / "truncated.mp4")]
    assert entries[0]["top"] == [{"index": CLASS_OF["red"], "label": None, "prob": pytest.approx(1, abs=0.01)}]
    assert all(set(e) == {"video", "error"} for e in entries[1:])
    assert "empty" in entries[1]["error"] and "not found" in entries[3]["error"]
    assert "5 of 6 videos could not be read" in err


def test_text_output_with_a_label_list_and_views(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    labels = setup["root"] / "names.txt"
    labels.write_text("\n".join(NAMES) + "\n")
    blue = str(setup["videos"] / "sub" / "c_blue.mp4")
    code, out, _ = run_main(setup, capsys, "--labels", str(labels), "--views", "1", "1", "--topk", "2", blue)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{blue}  (1 view)"
    assert lines[1].split(None, 1) == ["1.0000", NAMES[CLASS_OF["blue"]]] and len(lines) == 3 + 1  # blank line


def test_views_batches_and_max_ensemble(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    green = str(setup["videos"] / "b_green.webm")
    code, out, _ = run_main(setup, capsys, "--json", "--views", "3", "1", "--batch-size", "2", green,
                            "DATA.ENSEMBLE_METHOD", "max")  # fmt: skip
    assert code == 0
    (entry,) = json.loads(out)
    assert entry["views"] == 3 and entry["top"][0]["index"] == CLASS_OF["green"]


def test_class_count_mismatch_is_an_error(setup: dict[str, Path], capsys: pytest.CaptureFixture, vov3d_log) -> None:
    red = str(setup["videos"] / "a_red.mp4")
    code, out, err = run_main(setup, capsys, red, "MODEL.NUM_CLASSES", "5")
    assert code == 2 and out == ""
    assert "classifies 8 classes but MODEL.NUM_CLASSES is 5" in err and "MODEL.NUM_CLASSES 8" in err
    assert "was trained with another config: MODEL.NUM_CLASSES (file 8, run 5)" in vov3d_log.text  # warned first


def test_a_run_folder_gives_its_newest_checkpoint(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    run = RunFolder(str(setup["root"] / "run"))
    torch.manual_seed(3)
    save_checkpoint(run.checkpoint_path(1), build_model(load_config([X3D_TINY])))  # makes the folder
    Path(run.checkpoint_path(2)).write_bytes(setup["ckpt"].read_bytes())
    red = str(setup["videos"] / "a_red.mp4")
    code = main(["--cfg", X3D_TINY, "--checkpoint", run.root, "--json", "--views", "1", "1", red])
    assert code == 0 and json.loads(capsys.readouterr().out)[0]["top"][0]["index"] == CLASS_OF["red"]


def test_kinetics400_keyword_must_match_the_class_count(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(setup, capsys, "--labels", "kinetics400", str(setup["videos"] / "a_red.mp4"))
    assert code == 2 and "lists 400 classes but the model has 8" in err


def test_parse_args_overrides_and_views() -> None:
    args = parse_args(["--cfg", X3D_TINY, "--checkpoint", "c.pyth", "--views", "4", "1", "a.mp4", "dir",
                       "RNG_SEED", "3", "--opts", "TEST.BATCH_SIZE", "2"])  # fmt: skip
    assert args.videos == ["a.mp4", "dir"] and args.opts == ["RNG_SEED", "3", "TEST.BATCH_SIZE", "2"]
    cfg = setup_cfg(args)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, cfg.RNG_SEED) == (4, 1, 3)
    with pytest.raises(SystemExit):
        parse_args(["--cfg", X3D_TINY, "a.mp4"])  # no --checkpoint: no predictions from random weights


def test_label_files(tmp_path: Path) -> None:
    kinetics = read_class_names("kinetics400", 400)
    assert len(kinetics) == 400 and kinetics[0] == "abseiling" and kinetics[-1] == "zumba"
    plain = tmp_path / "classes.txt"
    plain.write_text("walking\nrunning\r\n")
    assert read_class_names(str(plain), 2) == ["walking", "running"]
    gap = tmp_path / "gap.json"
    gap.write_text(json.dumps({"Holding something": "0", "Pushing something": "2"}))
    with pytest.raises(AnnotationError, match="must be 0 .. 1"):
        read_class_names(str(gap))
    with pytest.raises(AnnotationError, match="not found"):
        read_class_names(str(tmp_path / "none.txt"))


def test_the_script_keeps_stdout_for_json(setup: dict[str, Path]) -> None:
    videos = [str(setup["videos"] / "a_red.mp4"), str(setup["broken"] / "empty.mp4")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}  # this checkout
    result = subprocess.run(
        [sys.executable, "tools/predict.py", "--cfg", X3D_TINY, "--checkpoint", str(setup["ckpt"]), "--json",
         "--views", "1", "1", "--device", "cpu", *videos],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert [sorted(e) for e in json.loads(result.stdout)] == [["top", "video", "views"], ["error", "video"]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    red = str(setup["videos"] / "a_red.mp4")
    results = []
    for device in ("cpu", "cuda"):
        code, out, _ = run_main(setup, capsys, "--json", "--device", device, red)
        assert code == 0
        results.append(json.loads(out)[0]["top"])
    assert [t["index"] for t in results[0]] == [t["index"] for t in results[1]]
    assert results[1][0]["prob"] == pytest.approx(results[0][0]["prob"], abs=1e-4)


def test_names_come_from_the_checkpoint_unless_labels_are_given(
    setup: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    stored = [f"stored {i}" for i in range(8)]
    state = torch.load(setup["ckpt"], weights_only=True)
    named = tmp_path / "named.pyth"
    torch.save({**state, "class_names": stored}, named)
    blue = str(setup["videos"] / "sub" / "c_blue.mp4")
    code = main(["--cfg", X3D_TINY, "--checkpoint", str(named), "--views", "1", "1", "--topk", "1", blue])
    assert code == 0 and capsys.readouterr().out.splitlines()[1].split(None, 1)[1] == stored[CLASS_OF["blue"]]
    labels = tmp_path / "names.txt"
    labels.write_text("\n".join(NAMES) + "\n")
    args = ["--cfg", X3D_TINY, "--checkpoint", str(named), "--labels", str(labels), "--topk", "1", "--json", blue]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["label"] == NAMES[CLASS_OF["blue"]]
