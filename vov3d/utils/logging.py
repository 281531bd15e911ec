"""Logging set-up: the main process prints, every process may write its own file, and
statistics go out as ``json_stats: {...}`` lines that tools can parse (as in PySlowFast)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import simplejson

from .distributed import get_rank, is_main_process
from .run_layout import STATS_MARKER, RunFolder

_FORMAT = "[%(asctime)s][%(levelname)s] %(name)s: %(message)s"
_HANDLER_FLAG = "_vov3d_handler"


def setup_logging(output_dir: Optional[str] = None, rank: Optional[int] = None, all_ranks: bool = False) -> None:
    """Configure the ``vov3d`` logger for this process.

    Rank 0 prints to stdout and writes ``output_dir/stdout.log``; with ``all_ranks`` every other
    rank writes ``output_dir/stdout_rank{r}.log`` and prints nothing. Calling it again replaces
    the handlers it added before.
    """
    rank = get_rank() if rank is None else rank
    root = logging.getLogger("vov3d")
    root.setLevel(logging.INFO)
    root.propagate = False
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(handler)
        handler.close()

    handlers: list[logging.Handler] = []
    if rank == 0:
        handlers.append(logging.StreamHandler(sys.stdout))
    if output_dir and (rank == 0 or all_ranks):
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(RunFolder(output_dir).log_path(rank)))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%m/%d %H:%M:%S"))
        setattr(handler, _HANDLER_FLAG, True)
        root.addHandler(handler)
    if not handlers:
        root.addHandler(_silent())


def _silent() -> logging.Handler:
    handler = logging.NullHandler()
    setattr(handler, _HANDLER_FLAG, True)
    return handler


def json_stats_line(stats: dict[str, Any]) -> str:
    """``json_stats: {...}`` with sorted keys and floats rounded for reading."""
    rounded = {k: round(v, 6) if isinstance(v, float) else v for k, v in stats.items()}
    return STATS_MARKER + simplejson.dumps(rounded, sort_keys=True)


def log_json_stats(stats: dict[str, Any], output_dir: Optional[str] = None) -> None:
    """Log ``stats`` as one json_stats line and, on the main process, append it to
    ``output_dir/json_stats.log``."""
    line = json_stats_line(stats)
    logging.getLogger("vov3d.stats").info(line)
    if output_dir and get_rank() == 0:
        os.makedirs(output_dir, exist_ok=True)
        with open(RunFolder(output_dir).stats_path, "a") as f:
            f.write(line + "\n")


@dataclass(frozen=True)
class StatsLog:
    """Where the loops send their statistics: json_stats lines (appended to
    ``output_dir/json_stats.log``) and, with a ``writer``, TensorBoard scalars. ``period`` is how
    many training iterations one ``train_iter`` line covers (LOG_PERIOD). Only the main process
    writes."""

    output_dir: Optional[str] = None
    period: int = 1
    writer: Optional[Any] = None

    def due(self, iteration: int) -> bool:
        """Whether iteration ``iteration`` (from 0) ends a period and gets a line."""
        return (iteration + 1) % self.period == 0

    def write(self, stats: dict[str, Any], scalars: Sequence[str] = (), step: int = 0) -> None:
        """One json_stats line of ``stats``; the keys ``scalars`` of it to TensorBoard at ``step``,
        tagged ``<first word of _type>/<key>`` (``train/loss``, ``val/top1_err``)."""
        if not is_main_process():
            return
        log_json_stats(stats, self.output_dir)
        if self.writer is not None:
            prefix = stats["_type"].split("_")[0]
            for key in scalars:
                self.writer.add_scalar(f"{prefix}/{key}", stats[key], step)
