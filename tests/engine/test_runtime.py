"""Per-process choices of the runtime: the mixed-precision dtype on simulated GPUs, the model's
size logged once on the main process, no CUDA work (pinned memory) in CPU runs, and gradients laid
out as their parameters, as DDP's buckets are (tests/engine/test_distributed.py sees DDP's warning
gone)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.engine.conftest import quick_cfg
from vov3d.config import ConfigError
from vov3d.datasets import build_loader
from vov3d.engine import runtime
from vov3d.engine.runtime import autocast_dtype, keep_grad_strides, prepare_model

CUDA = torch.device("cuda", 0)


@pytest.fixture
def amp_cfg(tmp_path: Path):
    """The quick config with mixed precision on, and overrides."""

    def make(*opts):
        return quick_cfg(tmp_path, tmp_path / "out", "TRAIN.MIXED_PRECISION", True, *opts)

    return make


@pytest.mark.parametrize(
    "capability, expected", [((7, 0), torch.float16), ((7, 5), torch.float16), ((8, 0), torch.bfloat16)]
)
def test_auto_takes_bf16_only_from_compute_capability_8(
    amp_cfg, monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], expected: torch.dtype
) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)  # as V100 / T4 say
    assert autocast_dtype(amp_cfg(), CUDA) == expected
    assert autocast_dtype(amp_cfg(), torch.device("cpu")) == torch.bfloat16


def test_the_dtype_can_be_chosen(amp_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert autocast_dtype(amp_cfg("TRAIN.MIXED_PRECISION_DTYPE", "float16"), CUDA) == torch.float16
    assert autocast_dtype(amp_cfg("TRAIN.MIXED_PRECISION_DTYPE", "bfloat16"), CUDA) == torch.bfloat16
    assert autocast_dtype(amp_cfg("TRAIN.MIXED_PRECISION", False), CUDA) is None
    with pytest.raises(ConfigError, match="TRAIN.MIXED_PRECISION_DTYPE = 'fp8'.*auto, bfloat16 or float16"):
        autocast_dtype(amp_cfg("TRAIN.MIXED_PRECISION_DTYPE", "fp8"), CUDA)


def model_info_lines(log: pytest.LogCaptureFixture) -> int:
    return sum("GMACs" in record.getMessage() for record in log.records)


def test_model_info_is_logged_once_per_run_on_the_main_process(
    amp_cfg, vov3d_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = amp_cfg("LOG_MODEL_INFO", True)
    prepare_model(cfg, torch.device("cpu"), train=True)
    prepare_model(cfg, torch.device("cpu"), train=False)  # the test after training
    assert model_info_lines(vov3d_log) == 1
    prepare_model(amp_cfg("LOG_MODEL_INFO", True, "TRAIN.ENABLE", False), torch.device("cpu"), train=False)
    assert model_info_lines(vov3d_log) == 2  # a test-only run logs it too
    monkeypatch.setattr(runtime, "is_main_process", lambda: False)
    prepare_model(cfg, torch.device("cpu"), train=True)
    assert model_info_lines(vov3d_log) == 2


def test_cpu_runs_pin_no_memory_on_a_gpu_machine(
    colour_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = quick_cfg(colour_data, tmp_path, "NUM_GPUS", 0, "DATA_LOADER.PIN_MEMORY", True)
    assert build_loader(cfg, "val").pin_memory is False


def grads_of_a_step(cfg, keep: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = prepare_model(cfg, torch.device("cpu"), train=True)  # channels_last_3d (MODEL.CHANNELS_LAST)
    if keep:
        keep_grad_strides(model)
    clip = torch.randn(2, 3, 4, 32, 32).contiguous(memory_format=torch.channels_last_3d)
    model(clip).square().sum().backward()
    return {name: (param.grad, param.stride()) for name, param in model.named_parameters()}


def test_gradients_keep_the_strides_of_their_parameters(tmp_path: Path) -> None:
    """DDP lays a bucket view out as its parameter and warns about any gradient whose strides differ.
    On one thread (the tests', torchrun's default) the CPU conv returns the gradients of 1x1x1 and
    (k,1,1) weights in the plain layout; with keep_grad_strides every stride is the parameter's,
    and the values are the same."""
    assert torch.get_num_threads() == 1
    cfg = quick_cfg(tmp_path, tmp_path / "out")
    plain, kept = grads_of_a_step(cfg, keep=False), grads_of_a_step(cfg, keep=True)
    assert any(grad.stride() != strides for grad, strides in plain.values())  # what DDP warned about
    for name, (grad, strides) in kept.items():
        assert grad.stride() == strides, name
        torch.testing.assert_close(grad, plain[name][0], rtol=0, atol=0, msg=name)
