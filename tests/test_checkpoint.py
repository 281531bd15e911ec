"""vov3d.checkpoint: round trips, the layouts it reads, atomic writes, and every load error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS
from tests.helpers import tiny_vov3d
from vov3d.checkpoint import CheckpointError, apply_checkpoint, load_weights, read_checkpoint, save_checkpoint
from vov3d.cli import export, predict
from vov3d.config import get_cfg, load_config
from vov3d.engine.run_folder import load_test_checkpoint, resume_or_initialise
from vov3d.engine.solver import LRSchedule, build_optimizer
from vov3d.models import build_model
from vov3d.models.x3d import X3D

QUICK = {name: str(CONFIGS / "quick" / f"{name}_tiny.yaml") for name in ("x3d", "vov3d")}


def tiny_x3d(num_classes: int = 5, seed: int = 0) -> X3D:
    torch.manual_seed(seed)
    return X3D(
        width_factor=1.0,
        depth_factor=1.0,
        bottleneck_factor=2.25,
        num_classes=num_classes,
        num_frames=2,
        crop_size=32,
        dim_c5=32,
    )


def clip() -> torch.Tensor:
    return torch.randn(2, 3, 2, 32, 32, generator=torch.Generator().manual_seed(1))


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """One step, so weights, BN statistics and optimizer buffers all differ from a fresh model."""
    model.train()
    torch.nn.functional.cross_entropy(model(clip()), torch.tensor([0, 1])).backward()
    optimizer.step()
    optimizer.zero_grad()


def sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)


@pytest.mark.parametrize("make", [tiny_vov3d, tiny_x3d])
def test_round_trip_gives_identical_outputs(make, tmp_path: Path) -> None:
    model = make()
    optimizer = sgd(model)
    train_step(model, optimizer)
    path = tmp_path / "ckpt" / "checkpoint_epoch_00003.pyth"
    save_checkpoint(str(path), model, optimizer, epoch=3, cfg=get_cfg(), scheduler_state={"last_epoch": 3})

    restored = make(seed=1)
    restored_optimizer = sgd(restored)
    checkpoint = apply_checkpoint(read_checkpoint(str(path)), str(path), restored, restored_optimizer)
    assert checkpoint["epoch"] == 3 and checkpoint["scheduler_state"] == {"last_epoch": 3}
    assert "MODEL_NAME" in checkpoint["cfg"]
    with torch.no_grad():
        torch.testing.assert_close(restored.eval()(clip()), model.eval()(clip()), rtol=0, atol=0)
    ours, theirs = optimizer.state_dict()["state"], restored_optimizer.state_dict()["state"]
    assert all(torch.equal(ours[i]["momentum_buffer"], theirs[i]["momentum_buffer"]) for i in ours)


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_vov3d()
    path = tmp_path / "last.pyth"
    save_checkpoint(str(path), model, epoch=1)
    assert os.listdir(tmp_path) == ["last.pyth"]
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(str(path), model, epoch=2)
    assert os.listdir(tmp_path) == ["last.pyth"] and path.read_bytes() == before


def test_save_unwraps_compiled_models(tmp_path: Path) -> None:
    model = tiny_vov3d()
    save_checkpoint(str(tmp_path / "c.pyth"), torch.compile(model))
    names = list(torch.load(tmp_path / "c.pyth", weights_only=True)["model_state"])
    assert names == list(model.state_dict())


def test_standard_keys_are_not_extras(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="model_state"):
        save_checkpoint(str(tmp_path / "x.pyth"), tiny_vov3d(), model_state={})


def test_ddp_prefix_and_bare_state_dict(tmp_path: Path) -> None:
    expected = tiny_vov3d(seed=0).state_dict()
    ddp = {f"module.{k}": v for k, v in expected.items()}
    torch.save({"epoch": 7, "model_state": ddp, "optimizer_state": None, "cfg": ""}, tmp_path / "ddp.pth")
    torch.save(expected, tmp_path / "bare.pth")
    for name in ("ddp.pth", "bare.pth"):
        model, path = tiny_vov3d(seed=1), str(tmp_path / name)
        checkpoint = apply_checkpoint(read_checkpoint(path), path, model, sgd(model))  # no optimizer state: fine
        assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    assert set(checkpoint) == {"model_state"}


def _saved_with(tmp_path: Path, edit) -> str:
    state = tiny_vov3d().state_dict()
    edit(state)
    path = tmp_path / "edited.pth"
    torch.save({"epoch": 1, "model_state": state, "optimizer_state": None, "cfg": ""}, path)
    return str(path)


def test_missing_tensor_is_an_error(tmp_path: Path) -> None:
    path = _saved_with(tmp_path, lambda s: s.pop("s3.pathway0_res1.branch2.c_bn.weight"))
    with pytest.raises(CheckpointError, match=r"edited\.pth.*1 missing from the file: s3\.pathway0_res1"):
        apply_checkpoint(read_checkpoint(path), path, tiny_vov3d())


def test_unexpected_tensor_is_an_error(tmp_path: Path) -> None:
    path = _saved_with(tmp_path, lambda s: s.update({"s6.pathway0_res0.branch1.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=r"1 not in the model: s6\.pathway0_res0\.branch1\.weight"):
        apply_checkpoint(read_checkpoint(path), path, tiny_vov3d())


def test_misshaped_tensor_is_an_error(tmp_path: Path) -> None:
    path = _saved_with(tmp_path, lambda s: s.update({"s1.pathway0_stem.conv.weight": torch.zeros(5, 1, 3, 1, 1)}))
    with pytest.raises(CheckpointError, match=r"mis-shaped: s1\.pathway0_stem\.conv\.weight \(file \(5, 1, 3"):
        apply_checkpoint(read_checkpoint(path), path, tiny_vov3d())


def test_long_lists_are_capped(tmp_path: Path) -> None:
    path = _saved_with(tmp_path, lambda s: None)
    with pytest.raises(CheckpointError, match=r"missing from the file: .*, and \d+ more; \d+ not in the model"):
        apply_checkpoint(read_checkpoint(path), path, tiny_x3d())  # a VoV3D file into an X3D


@pytest.mark.parametrize("content", ["truncated", "text", "list", "empty"])
def test_unreadable_files_are_errors(content: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.pyth"
    save_checkpoint(str(path), tiny_vov3d())
    if content == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif content == "text":
        path.write_text("MODEL:\n  NUM_CLASSES: 5\n")
    elif content == "list":
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"checkpoint {path}"):
        read_checkpoint(str(path))
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(str(tmp_path / "nothing.pyth"))


def test_other_class_count_reinitialises_only_the_classifier(tmp_path: Path, vov3d_log) -> None:
    k400 = tiny_vov3d(num_classes=400, seed=0)
    path = tmp_path / "vov3d_M_k400.pth"
    save_checkpoint(str(path), k400)
    model = tiny_vov3d(num_classes=174, seed=1)
    fresh = model.head.projection.weight.clone()
    apply_checkpoint(read_checkpoint(str(path)), str(path), model)

    lines = [r.getMessage() for r in vov3d_log.records]
    assert lines == [f"checkpoint {path}: classifier head.projection has 400 classes, the model 174: re-initialised it"]
    assert torch.equal(model.head.projection.weight, fresh)
    loaded = {k: v for k, v in model.state_dict().items() if not k.startswith("head.projection.")}
    expected = k400.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.items())


def test_other_classifier_width_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "w.pth")
    save_checkpoint(path, tiny_vov3d(num_classes=400, dim_c5=32))
    with pytest.raises(CheckpointError, match=r"head\.projection\.weight \(file \(400, 32\), model \(174, 64\)\)"):
        apply_checkpoint(read_checkpoint(path), path, tiny_vov3d(num_classes=174, dim_c5=64))


def test_optimizer_state_needs_the_same_classifier(tmp_path: Path) -> None:
    source = tiny_vov3d(num_classes=400)
    optimizer = sgd(source)
    train_step(source, optimizer)
    path = str(tmp_path / "o.pth")
    save_checkpoint(path, source, optimizer)
    model = tiny_vov3d(num_classes=174)
    with pytest.raises(CheckpointError, match="optimizer state"):
        apply_checkpoint(read_checkpoint(path), path, model, sgd(model))


def test_optimizer_state_that_does_not_fit_is_an_error(tmp_path: Path) -> None:
    source = tiny_vov3d()
    path = str(tmp_path / "o.pth")
    save_checkpoint(path, source, sgd(source))
    model = tiny_vov3d()
    other = torch.optim.SGD([{"params": [model.head.projection.weight]}, {"params": [model.head.projection.bias]}])
    with pytest.raises(CheckpointError, match="optimizer state does not fit"):
        apply_checkpoint(read_checkpoint(path), path, model, other)


class Renamed(torch.nn.Module):
    """A network whose classifier is not called ``head.projection``: loading asks ``get_classifier()``."""

    def __init__(self, num_classes: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = torch.nn.Linear(3, 4)
        self.fc = torch.nn.Linear(4, num_classes)

    def get_classifier(self) -> torch.nn.Module:
        return self.fc


def test_the_classifier_is_the_module_the_network_names(tmp_path: Path, vov3d_log) -> None:
    path = str(tmp_path / "renamed.pth")
    save_checkpoint(path, Renamed(400, seed=0))
    model = Renamed(174, seed=1)
    fresh = model.fc.weight.clone()
    apply_checkpoint(read_checkpoint(path), path, model)
    assert torch.equal(model.fc.weight, fresh)
    assert torch.equal(model.features.weight, Renamed(400, seed=0).features.weight)
    assert f"checkpoint {path}: classifier fc has 400 classes, the model 174: re-initialised it" in vov3d_log.text

    unnamed = lambda classes: torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, classes))  # noqa: E731
    save_checkpoint(path, unnamed(400))
    with pytest.raises(CheckpointError, match=r"mis-shaped: 1\.weight \(file \(400, 4\), model \(174, 4\)\)"):
        apply_checkpoint(read_checkpoint(path), path, unnamed(174))  # no get_classifier(): every tensor must fit


@pytest.fixture(scope="module")
def x3d_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A checkpoint of the quick X3D, its config stored as training stores it."""
    path = str(tmp_path_factory.mktemp("other") / "x3d.pyth")
    cfg = load_config([QUICK["x3d"]])
    save_checkpoint(path, build_model(cfg), cfg=cfg)
    return path


def _entry_messages(x3d_file: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> dict[str, str]:
    """What each entry says when the X3D file is given to a VoV3D run: training's fine-tune
    path, the test, predict and export (the last two without their 'predict: ' / 'export: ')."""
    messages = {}
    cfg = load_config([QUICK["vov3d"]], ["OUTPUT_DIR", str(tmp_path / "run"), "TRAIN.CHECKPOINT_FILE_PATH", x3d_file])
    model = build_model(cfg)
    with pytest.raises(CheckpointError) as err:
        resume_or_initialise(cfg, model, build_optimizer(model, cfg), LRSchedule.from_cfg(cfg), None)
    messages["train"] = str(err.value)
    cfg = load_config([QUICK["vov3d"]], ["OUTPUT_DIR", str(tmp_path / "run"), "TEST.CHECKPOINT_FILE_PATH", x3d_file])
    with pytest.raises(CheckpointError) as err:
        load_test_checkpoint(cfg, build_model(cfg))
    messages["test"] = str(err.value)
    common = ["--cfg", QUICK["vov3d"], "--checkpoint", x3d_file]
    assert predict.main([*common, str(tmp_path / "clip.mp4")]) == 2
    messages["predict"] = capsys.readouterr().err.strip().removeprefix("predict: ")
    assert export.main([*common, "--format", "torchscript", "--output", str(tmp_path / "net.pt")]) == 2
    messages["export"] = capsys.readouterr().err.strip().removeprefix("export: ")
    return messages


def test_a_file_of_another_network_is_one_short_line_at_every_entry(
    x3d_file: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    messages = _entry_messages(x3d_file, tmp_path, capsys)
    line = messages["train"]
    assert line.startswith(f"checkpoint {x3d_file} does not fit this model (")
    assert "was trained with another config: MODEL.ARCH (file 'x3d', run 'vov3d'); " in line
    assert line.endswith("; pass the config it was trained with") and "\n" not in line and len(line) < 600
    assert "pathway0" not in line and "weight" not in line  # no tensor names
    assert messages == dict.fromkeys(messages, line)  # the same line everywhere


def test_a_file_that_fits_with_another_stored_config_is_a_warning_when_testing(tmp_path: Path, vov3d_log) -> None:
    source = load_config([QUICK["x3d"]], ["DATA.NUM_FRAMES", "2"])
    saved = build_model(source)
    path = str(tmp_path / "x3d_2f.pyth")
    save_checkpoint(path, saved, cfg=source)
    cfg = load_config([QUICK["x3d"]])
    model = build_model(cfg)
    load_weights(path, read_checkpoint(path), model, cfg, trained_classifier=True)
    assert vov3d_log.messages == [
        f"checkpoint {path} was trained with another config: DATA.NUM_FRAMES (file 2, run 4); "
        "pass the config it was trained with"
    ]
    assert all(torch.equal(v, saved.state_dict()[k]) for k, v in model.state_dict().items())
    vov3d_log.clear()
    load_weights(path, read_checkpoint(path), build_model(cfg), cfg, trained_classifier=False)  # fine-tuning
    assert vov3d_log.messages == []


def test_without_a_stored_network_config_the_tensors_are_named(tmp_path: Path) -> None:
    path = str(tmp_path / "bare.pth")
    torch.save(tiny_vov3d().state_dict(), path)  # no config to compare: the names are all there is
    cfg = load_config([QUICK["x3d"]])
    with pytest.raises(
        CheckpointError, match=r"does not fit the \d+ tensors of the model: \d+ missing from the file: s"
    ):
        load_weights(path, read_checkpoint(path), build_model(cfg), cfg, trained_classifier=False)
