"""The visualisation pass after the test (the ``visualize`` step of PySlowFast's run_net), written to
TensorBoard as animated GIFs (``add_gif``), over one view of each test video (the middle temporal
view's centre crop):

- TENSORBOARD.MODEL_VIS: Grad-CAM of each layer of GRAD_CAM.LAYER_LIST overlaid on the clip
  (``grad_cam/{layer}/{video} (predicted|true {class})``), with INPUT_VIDEO the clip itself
  (``input/{video} ({true class})``), with MODEL_WEIGHTS a histogram of every parameter
  (``weights/{name}``);
- TENSORBOARD.WRONG_PRED_VIS: the videos the test misclassified, by its combined views
  (``{TAG}/{video} (true {class}, predicted {class})``).

Each writes at most TENSORBOARD.VIS_MAX_VIDEOS videos. Every process loads the tested model (rank 0
chooses the checkpoint, as for the test) and checks the keys and subset files; after a last barrier
the main process alone goes over the videos, with no collective, and the others end their run (so
no one waits on it, however many videos it shows). One of TRAIN.STOP_SIGNALS ends the pass early;
the run then ends as usual. It runs after the test, or alone when TEST.ENABLE is False (misclassified
videos are then judged by their one view).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch
import torch.nn as nn

from vov3d.config import CfgNode, cfg_error
from vov3d.datasets import build_dataset
from vov3d.models import build_model
from vov3d.utils.distributed import barrier, is_main_process
from vov3d.utils.tensorboard import add_gif, make_writer
from vov3d.visualization.colormap import COLORMAPS, overlay
from vov3d.visualization.gradcam import DEFAULT_LAYER, GradCamUnavailable, grad_cam, grad_cam_layers

from .class_figures import class_subset, figure_class_names
from .evaluate import TestResult, tested_model
from .preemption import StopSignals
from .runtime import Execution

logger = logging.getLogger(__name__)

# Frames a second of the GIFs: a 16-frame clip plays in two seconds.
GIF_FPS = 8.0


def visualizes(cfg: CfgNode) -> bool:
    """Whether the cfg asks for the pass: TENSORBOARD.ENABLE and MODEL_VIS or WRONG_PRED_VIS."""
    board = cfg.TENSORBOARD
    return board.ENABLE and (board.MODEL_VIS.ENABLE or board.WRONG_PRED_VIS.ENABLE)


def layer_names(cfg: CfgNode) -> list[str]:
    """GRAD_CAM.LAYER_LIST, or the default layer (the last stage) when it is empty."""
    return list(cfg.TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST) or [DEFAULT_LAYER]


def check_visualize_cfg(cfg: CfgNode, model: Optional[nn.Module] = None) -> dict[str, nn.Module]:
    """The Grad-CAM layers of ``model`` (default: the cfg's network, built here), or an error
    naming the key before any work (run_net checks before training) when Grad-CAM cannot run: a
    colour map it does not have, captum missing, a layer the model does not have or that gives no
    N x C x T x H x W output. None asked for: empty."""
    cam = cfg.TENSORBOARD.MODEL_VIS.GRAD_CAM
    if not (cfg.TENSORBOARD.MODEL_VIS.ENABLE and cam.ENABLE):
        return {}
    if cam.COLORMAP not in COLORMAPS:
        raise cfg_error(cfg, "TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP", f"must be one of {', '.join(COLORMAPS)}")
    model = build_model(cfg) if model is None else model
    try:
        return grad_cam_layers(model, layer_names(cfg))
    except GradCamUnavailable as e:
        raise cfg_error(cfg, "TENSORBOARD.MODEL_VIS.GRAD_CAM.ENABLE", f"{e}, or set it False") from None
    except ValueError as e:
        raise cfg_error(cfg, "TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST", str(e)) from None


def visualize(cfg: CfgNode, result: Optional[TestResult] = None, signals: Optional[StopSignals] = None) -> None:
    """The pass the cfg asks for (``visualizes``), with the weights the test used. Misclassified
    videos are judged by ``result`` (the test's), and by their one view where it has no score."""
    execution = Execution.from_cfg(cfg)
    model, known_names = tested_model(cfg, execution.device)
    layers = check_visualize_cfg(cfg, model)
    board = cfg.TENSORBOARD
    names = figure_class_names(cfg, known_names)
    wrong = board.WRONG_PRED_VIS
    wrong_subset = class_subset(cfg, "TENSORBOARD.WRONG_PRED_VIS.SUBSET_PATH", names) if wrong.ENABLE else None
    barrier()  # every check passed on every process: the others may leave (no collective follows)
    if not is_main_process():
        return
    model.eval()
    clips = _Clips(build_dataset(cfg, "test"), board.VIS_MAX_VIDEOS, signals)
    writer = make_writer(cfg, cfg.TEST.DATASET)
    try:
        if board.MODEL_VIS.ENABLE:
            _model_vis(cfg, model, layers, execution, clips, writer, names)
        if wrong.ENABLE:
            _wrong_predictions(model, execution, clips, writer, names, wrong.TAG, wrong_subset, result)
    finally:
        writer.close()


class _Clips:
    """The test split's videos one view each, at most ``limit`` (0: all) per use; none more once
    one of ``signals`` came."""

    def __init__(self, dataset: Any, limit: int, signals: Optional[StopSignals]) -> None:
        self.dataset, self.signals = dataset, signals
        self.limit = limit or dataset.num_videos

    def more(self, shown: int) -> bool:
        """Whether another video may be shown after ``shown``."""
        received = self.signals is not None and self.signals.received is not None
        if received:
            logger.warning("%s received: the visualisation stops after %d videos", self.signals.received, shown)
        return shown < self.limit and not received

    def label(self, video: int) -> int:
        return self.dataset.labels[video]

    def frames(self, video: int) -> Optional[torch.Tensor]:
        """uint8 T x H x W x 3: the middle temporal view's centre crop; None for a video that
        could not be read (TEST.SKIP_BROKEN_VIDEOS)."""
        data = self.dataset
        view = (data.num_temporal_views // 2) * data.num_spatial_crops + data.num_spatial_crops // 2
        frames, _, _, meta = data[video * data.num_views + view]
        return frames if meta["valid"] else None


def _model_vis(
    cfg: CfgNode,
    model: nn.Module,
    layers: dict[str, nn.Module],
    execution: Execution,
    clips: _Clips,
    writer: Any,
    names: list[str],
) -> None:
    vis = cfg.TENSORBOARD.MODEL_VIS
    if vis.MODEL_WEIGHTS:
        for name, param in model.named_parameters():
            writer.add_histogram(f"weights/{name}", param.detach().float().cpu())
    cam = vis.GRAD_CAM
    if not (layers or vis.INPUT_VIDEO):
        return
    shown, kind = 0, "true" if cam.USE_TRUE_LABEL else "predicted"
    for video in range(clips.dataset.num_videos):
        if not clips.more(shown):
            break
        frames = clips.frames(video)
        if frames is None:
            continue
        label = clips.label(video)
        if vis.INPUT_VIDEO:
            add_gif(writer, f"input/{video} ({names[label]})", frames, GIF_FPS)
        inputs = execution.to_input(frames[None])
        targets = torch.tensor([label], device=inputs.device) if cam.USE_TRUE_LABEL else None
        for name, layer in layers.items():
            heat, probs = grad_cam(model, inputs, layer, targets)
            shown_class = label if cam.USE_TRUE_LABEL else int(probs.argmax())
            image = overlay(frames, heat[0].cpu(), cam.COLORMAP)
            add_gif(writer, f"grad_cam/{name}/{video} ({kind} {names[shown_class]})", image, GIF_FPS)
        shown += 1


def _wrong_predictions(
    model: nn.Module,
    execution: Execution,
    clips: _Clips,
    writer: Any,
    names: list[str],
    tag: str,
    subset: Optional[list[int]],
    result: Optional[TestResult],
) -> None:
    shown = 0
    for video in range(clips.dataset.num_videos):
        if not clips.more(shown):
            break
        label = clips.label(video)
        if subset is not None and label not in subset:
            continue
        scored = result is not None and bool(result.scored[video])
        predicted = int(result.scores[video].argmax()) if scored else None
        if predicted == label:
            continue  # right by the test's views: not decoded
        frames = clips.frames(video)
        if frames is None:
            continue
        if predicted is None:
            with torch.no_grad():
                predicted = int(model(execution.to_input(frames[None])).argmax())
        if predicted != label:
            add_gif(writer, f"{tag}/{video} (true {names[label]}, predicted {names[predicted]})", frames, GIF_FPS)
            shown += 1
