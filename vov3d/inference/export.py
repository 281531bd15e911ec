"""Export a trained model to TorchScript or ONNX, and check the file against the PyTorch model.

Both formats come from tracing the eval-mode model (it outputs class probabilities) on one clip
of the test shape. TorchScript uses ``torch.jit.trace``; ONNX uses ``torch.onnx.export`` with
``dynamo=False`` (the TorchScript-based exporter), which needs only the ``onnx`` package: the
newer dynamo exporter also needs ``onnxscript``, and both give the same graph for these plain
convolutional networks. Time, height and width are fixed at the traced shape; the batch size is
free (a dynamic axis in ONNX), and the check runs batches of 1 and 2 to prove it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from vov3d.utils.atomic import atomic_path

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "clip", "probs"
CHECK_BATCHES = (1, 2)
_ONNX_HINT = 'ONNX export needs the onnx and onnxruntime packages: pip install -e ".[onnx]"'


class ExportError(RuntimeError):
    """The export cannot run here (a missing package) or its file does not match the model."""


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Hide the warnings tracing always gives for these models: TorchScript's deprecation notice
    and the tracer's note that the head's pooling window becomes a constant. The numeric check
    after export is what says whether the file is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def require_onnx() -> None:
    """Raise ExportError with the install command when onnx or onnxruntime is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ExportError(f"{_ONNX_HINT} ({e})") from None


def export_model(model: nn.Module, clip: torch.Tensor, path: str, fmt: str) -> None:
    """Trace ``model`` (in eval mode) on ``clip`` and write it to ``path`` in format ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model.eval()
    with torch.no_grad(), _quiet_tracing():
        if fmt == "torchscript":
            torch.jit.trace(model, clip).save(path)
            return
        require_onnx()
        torch.onnx.export(
            model,
            (clip,),
            path,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
        import onnx

        onnx.checker.check_model(path)


def run_exported(path: str, fmt: str, clips: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Outputs of the exported file at ``path`` for each clip batch, on the CPU."""
    if fmt == "torchscript":
        with torch.no_grad(), _quiet_tracing():
            module = torch.jit.load(path, map_location="cpu")
            return [module(clip).numpy() for clip in clips]
    require_onnx()
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return [session.run([OUTPUT_NAME], {INPUT_NAME: clip.numpy()})[0] for clip in clips]


def check_clips(shape: Sequence[int], seed: int = 0) -> list[torch.Tensor]:
    """Random normalised-looking clips of ``shape`` (batch 1) at each batch size in CHECK_BATCHES."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *shape[1:], generator=generator) for batch in CHECK_BATCHES]


def max_difference(model: nn.Module, path: str, fmt: str, clips: Sequence[torch.Tensor]) -> float:
    """The largest absolute difference between the exported file's and the model's outputs."""
    with torch.no_grad():
        expected = [model.eval()(clip).numpy() for clip in clips]
    got = run_exported(path, fmt, clips)
    worst = 0.0
    for want, have in zip(expected, got):
        if want.shape != have.shape:
            raise ExportError(f"{path}: output shape {have.shape} for a batch of {len(want)}, expected {want.shape}")
        worst = max(worst, float(np.abs(want - have).max()))
    return worst


def export_and_check(model: nn.Module, shape: Sequence[int], path: str, fmt: str, tolerance: float) -> float:
    """Export ``model`` traced at ``shape`` to ``path`` and return the maximum difference to the
    PyTorch outputs over batches of 1 and 2. The file is written beside ``path`` first and
    renamed only when the difference is within ``tolerance``: a file at ``path`` has passed.
    Raises ExportError otherwise."""
    model = model.cpu().eval()
    with atomic_path(path) as tmp:
        export_model(model, torch.zeros(*shape), tmp, fmt)
        difference = max_difference(model, tmp, fmt, check_clips(shape))
        if not difference <= tolerance:  # NaN fails too
            raise ExportError(
                f"the {fmt} export differs from the PyTorch model by {difference:.3g}, more than the "
                f"tolerance {tolerance:g}; nothing was written to {path}"
            )
    return difference
