"""How the model runs in this process: device, mixed precision, memory format, SyncBatchNorm,
torch.compile and DistributedDataParallel. Training and testing share these."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional, TypeVar

import torch
import torch.nn as nn

from vov3d.config import CfgNode, cfg_error
from vov3d.datasets.transforms import Normalize
from vov3d.models import build_model
from vov3d.models.fuse import fold_bn
from vov3d.utils.complexity import log_model_info
from vov3d.utils.distributed import consecutive_groups, get_world_size, is_distributed, is_main_process

logger = logging.getLogger(__name__)
T = TypeVar("T")


def current_device(cfg: CfgNode) -> torch.device:
    """This process's GPU (set by the launcher) when NUM_GPUS > 0, else the CPU."""
    if cfg.NUM_GPUS > 0:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast_dtype(cfg: CfgNode, device: torch.device) -> Optional[torch.dtype]:
    """TRAIN.MIXED_PRECISION's dtype, None when mixed precision is off. TRAIN.MIXED_PRECISION_DTYPE
    ``auto`` takes bf16 on CPUs and on GPUs of compute capability 8.0 (Ampere) or newer, else fp16
    (with a GradScaler): V100 / T4 report bf16 as supported, but only emulate it, slowly."""
    if not cfg.TRAIN.MIXED_PRECISION:
        return None
    choice = cfg.TRAIN.MIXED_PRECISION_DTYPE
    if choice in AMP_DTYPES:
        return AMP_DTYPES[choice]
    if choice != "auto":
        raise cfg_error(cfg, "TRAIN.MIXED_PRECISION_DTYPE", f"must be auto, {' or '.join(AMP_DTYPES)}")
    if device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 0):
        return torch.float16
    return torch.bfloat16


def grad_scaler(device: torch.device, dtype: Optional[torch.dtype]) -> Optional[torch.amp.GradScaler]:
    """A loss scaler for fp16, whose small range would let gradients underflow; bf16 needs none."""
    return torch.amp.GradScaler(device.type) if dtype == torch.float16 else None


@dataclass(frozen=True)
class Execution:
    """Where and how the model runs: its device, the autocast dtype (None: full precision),
    whether clips go in as channels_last_3d, and how the loaders' uint8 clips become its input.
    Resolved from the cfg once; the loops take it."""

    device: torch.device
    amp_dtype: Optional[torch.dtype] = None
    channels_last: bool = False
    normalize: Normalize = Normalize()

    @classmethod
    def from_cfg(cls, cfg: CfgNode, device: Optional[torch.device] = None) -> Execution:
        """On ``device`` (by default this process's, ``current_device``): TRAIN.MIXED_PRECISION's
        dtype for it, MODEL.CHANNELS_LAST and DATA.MEAN, DATA.STD, DATA.REVERSE_INPUT_CHANNEL."""
        device = current_device(cfg) if device is None else device
        return cls(device, autocast_dtype(cfg, device), cfg.MODEL.CHANNELS_LAST, Normalize.from_cfg(cfg))

    def autocast(self) -> torch.autocast:
        """Mixed precision in ``amp_dtype`` on the device's type; a no-op context without one."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def to_input(self, clips: torch.Tensor) -> torch.Tensor:
        """A loader's batch of uint8 B x T x H x W x 3 clips as the network's input on the device:
        the uint8 bytes are what travels, the float clip is made there (``normalize``), in
        channels_last_3d when ``channels_last``."""
        return self.normalize(clips.to(self.device, non_blocking=True), self.channels_last)


def prepare_model(cfg: CfgNode, device: torch.device, train: bool) -> nn.Module:
    """``build_model`` on ``device``; for training BN layers become SyncBatchNorm when
    BN.NORM_TYPE asks for it (before the optimizer sees the parameters). With LOG_MODEL_INFO the
    main process logs its size and GMACs, once per run: when training, or when only testing."""
    model = build_model(cfg)
    if cfg.LOG_MODEL_INFO and is_main_process() and (train or not cfg.TRAIN.ENABLE):
        log_model_info(model, cfg)
    if train and cfg.BN.NORM_TYPE == "sync_batchnorm":
        model = _convert_sync_bn(model, cfg, device)
    model = model.to(device)
    if cfg.MODEL.CHANNELS_LAST:
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def for_inference(model: nn.Module, fold: bool) -> nn.Module:
    """``model`` (weights loaded) in eval mode, with BN folded into its convs when ``fold`` (TEST.FOLD_BN)."""
    model.eval()
    return fold_bn(model) if fold else model


def _convert_sync_bn(model: nn.Module, cfg: CfgNode, device: torch.device) -> nn.Module:
    """BN statistics over groups of BN.NUM_SYNC_DEVICES consecutive ranks (the SS fine-tuning
    configs use 4). Plain BN where syncing would change nothing or cannot run."""
    world, size = get_world_size(), cfg.BN.NUM_SYNC_DEVICES
    if device.type != "cuda":
        logger.warning("BN.NORM_TYPE sync_batchnorm needs GPUs; using per-process BatchNorm on the CPU")
        return model
    if world == 1 or size == 1:
        logger.info("sync_batchnorm over 1 process is plain BatchNorm; not converting")
        return model
    if size < 1 or world % size:
        raise cfg_error(cfg, "BN.NUM_SYNC_DEVICES", f"must divide the number of processes, {world}")
    group = consecutive_groups(size) if size < world else None  # None: the whole world
    logger.info("BatchNorm synchronised over groups of %d processes", size)
    return nn.SyncBatchNorm.convert_sync_batchnorm(model, group)


def compile_model(model: nn.Module, enabled: bool) -> nn.Module:
    """torch.compile when ``enabled`` (MODEL.COMPILE); checkpoints unwrap it: parameter names do not change."""
    return torch.compile(model) if enabled else model


def distribute(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel when there is more than one process (``model`` already in its
    final memory format: DDP lays its gradient buckets out as the parameters are then)."""
    if not is_distributed() or get_world_size() == 1:
        return model
    keep_grad_strides(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def keep_grad_strides(model: nn.Module) -> None:
    """Give each gradient its parameter's strides where they differ only in dimensions of size 1.

    A 1x1x1 or (k,1,1) conv weight in channels_last_3d has strides in its size-1 dimensions that
    the plain layout would not have; the same bytes in the same order. The CPU's single-thread conv
    (torchrun's default of one OpenMP thread) returns such weights' gradients in the plain layout,
    which autograd accepts, while DDP compares every stride with its bucket's and warns "Grad
    strides do not match bucket view strides" on every process. The view taken here moves nothing."""
    for param in model.parameters():
        if param.requires_grad and 1 in param.shape:
            param.register_hook(functools.partial(_with_strides, param.stride()))


def _with_strides(strides: tuple[int, ...], grad: torch.Tensor) -> torch.Tensor:
    same_order = all(a == b for size, a, b in zip(grad.shape, grad.stride(), strides) if size != 1)
    return grad.as_strided(grad.shape, strides) if same_order and grad.stride() != strides else grad


def progress(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    """A tqdm bar on an interactive terminal of the main process; the items unchanged otherwise
    (log files and batch jobs get json_stats lines instead)."""
    if not (is_main_process() and sys.stdout.isatty()):
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=description, leave=False, dynamic_ncols=True)
