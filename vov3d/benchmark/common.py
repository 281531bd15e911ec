"""Measuring speed the same way in every benchmark: timed calls with warm-up and the median of
repeats, peak memory, the machine and the versions, and Markdown tables."""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Callable, Optional

import torch

from vov3d.utils.cpus import usable_cpus


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], repeats: int, device: torch.device) -> list[float]:
    """Seconds of each of ``repeats`` calls; GPU work is waited for."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def endless(batches: Iterable[Any]) -> Iterator[Any]:
    """The batches of a loader again and again, across epochs (its workers stay alive)."""
    while True:
        yield from batches


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class PeakMemory:
    """Peak memory of the work done since ``reset``, in MiB.

    GPU: the largest allocated memory (weights, activations, gradients, optimizer state). CPU:
    the peak resident set of this process above ``baseline`` (the process before the model was
    built): the same tensors plus the allocator's and, for compiled variants, the compiler's
    memory. Linux can reset the peak; elsewhere it is the peak since the process started.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.baseline = _status_kib("VmRSS") if device.type == "cpu" else 0

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif os.path.exists("/proc/self/clear_refs"):
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # the peak resident set becomes the current one
            except OSError:
                pass

    def mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return max(_status_kib("VmHWM") - self.baseline, 0) / 1024


def _status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB; elsewhere the peak RSS reported by getrusage."""
    try:
        with open("/proc/self/status") as f:
            match = re.search(rf"^{field}:\s+(\d+)", f.read(), re.MULTILINE)
        if match:
            return int(match.group(1))
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def load_average() -> Optional[float]:
    """The 1-minute load average: how busy the machine was (other jobs slow every figure)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def environment(device: torch.device) -> dict[str, Any]:
    """The machine and the versions that the figures depend on, for BENCHMARKS.md."""
    import av
    import numpy
    import PIL

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = re.findall(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        cpu = names[0] if names else cpu
    info = {
        "device": str(device),
        "cpu": cpu,
        "cpu_cores": usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", "unknown"),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
        "load_average": load_average(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def environment_line(env: dict[str, Any]) -> str:
    """``environment``'s figures on one line, printed above a table, so that a pasted table says
    where it was measured."""
    gpu = f"{env['gpu']} (CUDA {env['cuda']}), " if "gpu" in env else ""
    return (
        f"{env['device']}: {gpu}{env['cpu']} ({env['cpu_cores']} cores, {env['torch_threads']} torch threads); "
        f"Python {env['python']}, torch {env['torch']}, PyAV {env['av']}, NumPy {env['numpy']}; "
        f"{env['platform']}; load {env['load_average']}"
    )


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as a Markdown table; ``columns`` are (key, header); floats get 3 significant digits."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(header for _, header in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    lines += ["| " + " | ".join(cell(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)
