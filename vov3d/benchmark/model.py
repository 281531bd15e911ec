"""``benchmark model``: clips/s and peak memory of the networks' execution variants, for
inference and for a training step (forward, backward, SGD step), each against the plain NCDHW
eager baseline on the same weights and input, with the largest output difference to it."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from vov3d.config import CfgNode, config_root, load_config
from vov3d.models.variants import BASELINE, Variant

from .common import PeakMemory, load_average, markdown_table, median, time_calls

CONFIGS = config_root()
DEFAULT_MODELS = [
    str(CONFIGS / "Kinetics/x3d/X3D_M.yaml"),
    str(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml"),
    str(CONFIGS / "Kinetics/vov3d/vov3d_L.yaml"),
]
# cl+dw=auto is the engine's training default, cl+fold+dw=auto its test default.
DEFAULT_VARIANTS = (
    "base,cl,fold,cl+fold,bf16,cl+bf16,dw=fused,dw=frames2d,cl+dw=fused,cl+dw=frames2d,"
    "cl+dw=auto,cl+fold+dw=auto,cl+compile,cl+dw=auto+compile"
)
MODEL_COLUMNS = [
    ("model", "model"),
    ("mode", "mode"),
    ("variant", "variant"),
    ("clips_per_s", "clips/s"),
    ("speedup", "x base"),
    ("ms_per_iter", "ms/iter"),
    ("peak_mib", "peak MiB"),
    ("first_call_s", "1st call s"),
    ("rel_diff", "rel. diff"),
    ("load", "load"),
]


def model_cfg(path: str, frames: int, crop: int) -> CfgNode:
    """The network of config ``path`` for ``frames`` x ``crop`` x ``crop`` clips."""
    # No dropout: its random mask differs between variants, and outputs would not compare.
    overrides = {"DATA.NUM_FRAMES": frames, "DATA.TRAIN_CROP_SIZE": crop, "MODEL.DROPOUT_RATE": 0.0}
    return load_config([path], [str(v) for pair in overrides.items() for v in pair] + ["LOG_MODEL_INFO", "False"])


def model_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one (config, variant, mode) in this process; ``model`` runs each in a fresh one, so
    that compiled code, allocator caches and the peak memory of one do not leak into the next."""
    from vov3d.models import build_model

    device, train = torch.device(spec["device"]), spec["mode"] == "train"
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    variant = Variant.parse(spec["variant"])
    memory = PeakMemory(device)
    cfg = model_cfg(spec["config"], spec["frames"], spec["crop"])
    torch.manual_seed(0)  # the same weights in every cell, so outputs can be compared
    model = build_model(cfg).to(device)
    reason = variant.skip_reason(model, train)
    if reason:
        return {"skipped": reason}
    net = variant.prepare(model, train)
    generator = torch.Generator().manual_seed(1)
    shape = (spec["batch_size"], 3, spec["frames"], spec["crop"], spec["crop"])
    clip = variant.input(torch.randn(shape, generator=generator).to(device))
    labels = torch.randint(0, cfg.MODEL.NUM_CLASSES, shape[:1], generator=generator).to(device)
    outputs: list[torch.Tensor] = []
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) if train else None

    def step() -> None:
        with torch.set_grad_enabled(train), variant.autocast(device):
            out = net(clip)
            loss = F.cross_entropy(out, labels) if train else None
        if not outputs:  # before any weight update: comparable across variants
            outputs.append(out.detach().float().cpu())
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    load = load_average()
    first = time_calls(step, 1, device)[0]
    time_calls(step, spec["warmup"], device)
    memory.reset()
    times = time_calls(step, spec["repeats"], device)
    return {
        "times_s": times,
        "first_call_s": first,
        "ms_per_iter": 1e3 * median(times),
        "clips_per_s": spec["batch_size"] / median(times),
        "peak_mib": memory.mib(),
        "output": outputs[0].tolist(),
        "load": max(load or 0.0, load_average() or 0.0),
    }


def isolated(fn: Callable[[dict[str, Any]], dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    """``fn(spec)`` in a freshly spawned process."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, spec).result()


def relative_diff(output: list, reference: list) -> float:
    """The largest difference to the reference output, relative to the reference's largest value
    (test-mode outputs are probabilities, ~1/400 each: absolute differences would look tiny)."""
    a, b = torch.tensor(output), torch.tensor(reference)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@dataclass(frozen=True)
class ModelSettings:
    """What ``run`` measures: the network configs, comma-separated variants and modes (infer,
    train), clips of ``frames`` x ``crop`` x ``crop`` per step (``batch_size`` None: 2 on the CPU,
    16 on a GPU), untimed and timed steps, the device and torch threads (0: torch's choice)."""

    configs: list[str]
    variants: str
    modes: str
    batch_size: Optional[int]
    frames: int
    crop: int
    warmup: int
    repeats: int
    device: str = "cpu"
    threads: int = 0


def run(settings: ModelSettings) -> dict[str, Any]:
    """Every variant of every config, inference and training, against the ``base`` variant."""
    settings = replace(settings, batch_size=settings.batch_size or (16 if settings.device == "cuda" else 2))
    variants = [Variant.parse(v).name for v in settings.variants.split(",")]
    if BASELINE not in variants:
        variants.insert(0, BASELINE)  # speed-ups and output checks are relative to it
    rows = []
    for config in settings.configs:
        for mode in settings.modes.split(","):
            base: Optional[dict[str, Any]] = None
            for variant in sorted(variants, key=lambda v: v != BASELINE):
                spec = dict(asdict(settings), config=config, variant=variant, mode=mode)
                result = isolated(model_cell, spec)
                if "skipped" in result:
                    continue
                base = base or result
                row = {"model": Path(config).stem, "mode": mode, "variant": variant, **result}
                row["speedup"] = result["clips_per_s"] / base["clips_per_s"]
                row["rel_diff"] = relative_diff(row.pop("output"), base["output"])
                rows.append(row)
                print(markdown_table([row], MODEL_COLUMNS).splitlines()[-1], flush=True)
    summary = {k: getattr(settings, k) for k in ("batch_size", "frames", "crop", "warmup", "repeats", "threads")}
    return {"settings": summary, "rows": rows, "table": markdown_table(rows, MODEL_COLUMNS)}
