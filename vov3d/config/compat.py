"""Keys and values that published PySlowFast / VoV3D YAML files set and that vov3d handles in its
own way. MIXUP.*, AUG.ENABLE / AA_TYPE / INTERPOLATION / NUM_SAMPLE and MULTIGRID's settings are real
keys (defaults.py), not listed here.

IGNORED_KEYS have no effect here and are accepted with a one-line warning. A value other than
``ANY`` must match: another value would ask for behaviour vov3d does not have, and is a config
error (see ``node.py``). REFUSED_VALUES are values of real or ignored keys that vov3d cannot
honour, each with the reason and what to use instead.
"""

from __future__ import annotations

from typing import Any, Optional

ANY = object()
_DEMO_DETECTION = (
    "DETECTRON2_CFG", "DETECTRON2_WEIGHTS", "DETECTRON2_THRESH", "PREDS_BOXES", "GT_BOXES", "STARTING_SECOND",
    "CLIP_VIS_SIZE", "SLOWMO",
)  # fmt: skip
_DEMO_THRESHOLDS = ("VIS_MODE", "COMMON_CLASS_THRES", "UNCOMMON_CLASS_THRES", "COMMON_CLASS_NAMES")
_DEMO_READER = ("NUM_VIS_INSTANCES", "THREAD_ENABLE", "NUM_CLIPS_SKIP")
_TENSORBOARD_MATPLOTLIB = (
    "CONFUSION_MATRIX.FIGSIZE", "HISTOGRAM.FIGSIZE", "MODEL_VIS.COLORMAP",
)  # fmt: skip
IGNORED_KEYS = {
    "NONLOCAL": ANY,  # non-local blocks are not part of X3D or VoV3D
    "RESNET.NUM_BLOCK_TEMP_KERNEL": ANY,
    "RESNET.WIDTH_PER_GROUP": ANY,
    "RESNET.NUM_GROUPS": ANY,
    "RESNET.STRIDE_1X1": False,
    "RESNET.SPATIAL_STRIDES": [[2], [2], [2], [2]],
    "RESNET.TRANS_FUNC": "x3d_transform",
    "RESNET.DEPTH": ANY,
    "RESNET.INPLACE_RELU": ANY,
    "VOV3D.TEMPORAL_DILATIONS": [[1], [1], [1], [1]],
    "DETECTION.ENABLE": False,  # detection (AVA) is not part of vov3d
    "MODEL.HEAD_ACT": "softmax",
    "MODEL.SINGLE_PATHWAY_ARCH": ANY,
    "MODEL.MULTI_PATHWAY_ARCH": ANY,
    # PySlowFast's AUG keys beyond RandAugment and repeated augmentation (AUG.ENABLE, AA_TYPE,
    # INTERPOLATION, NUM_SAMPLE): random erasing is not implemented, so only its "off" values are accepted.
    "AUG.RE_PROB": 0.0,
    "AUG.RE_MODE": ANY,
    "AUG.RE_COUNT": ANY,
    "AUG.RE_SPLIT": ANY,
    # vov3d reads PyTorch checkpoint files only, which is what "pytorch" names.
    "TRAIN.CHECKPOINT_TYPE": "pytorch",
    "TEST.CHECKPOINT_TYPE": "pytorch",
    # PySlowFast overwrites these at start ("no need to specify"); vov3d derives them.
    "MULTIGRID.DEFAULT_B": ANY,
    "MULTIGRID.DEFAULT_T": ANY,
    "MULTIGRID.DEFAULT_S": ANY,
    "MULTIGRID.LONG_CYCLE_SAMPLING_RATE": ANY,
    # PySlowFast's demo and TensorBoard keys for detection (AVA boxes, detectron2), thresholds,
    # reader threads and matplotlib figures: vov3d's demo draws the top classes of every window,
    # and its figures are drawn with Pillow.
    **{f"DEMO.{name}": ANY for name in _DEMO_DETECTION + _DEMO_THRESHOLDS + _DEMO_READER},
    "DEMO.INPUT_FORMAT": ANY,
    **{f"TENSORBOARD.{name}": ANY for name in _TENSORBOARD_MATPLOTLIB},
    "TENSORBOARD.PREDICTIONS_PATH": "",
    "TENSORBOARD.CATEGORIES_PATH": "",
    "TENSORBOARD.MODEL_VIS.ACTIVATIONS": False,
    "TENSORBOARD.MODEL_VIS.LAYER_LIST": ANY,
    "TENSORBOARD.MODEL_VIS.TOPK_PREDS": ANY,
}
# The one-line warning of an ignored key, where "no effect on X3D or VoV3D" would not be the reason.
IGNORE_NOTES = {
    **{
        f"DEMO.{name}": "it is for detection (AVA boxes, detectron2), which vov3d does not do"
        for name in _DEMO_DETECTION
    },
    **{f"DEMO.{name}": "the demo draws each window's top classes (demo.py --topk)" for name in _DEMO_THRESHOLDS},
    **{
        f"DEMO.{name}": "the demo reads in one thread and scores every window (demo.py --stride)"
        for name in _DEMO_READER
    },
    "DEMO.INPUT_FORMAT": "the demo decodes frames as RGB with PyAV; the model's channel order is the config's",
    **{
        f"TENSORBOARD.{name}": "vov3d draws its figures with Pillow, sized to the class names"
        for name in _TENSORBOARD_MATPLOTLIB
    },
    "TENSORBOARD.PREDICTIONS_PATH": "the figures are made from the test's own predictions",
    "TENSORBOARD.CATEGORIES_PATH": "the figures are made from the test's own predictions",
    "TENSORBOARD.MODEL_VIS.ACTIVATIONS": "activations are not plotted (Grad-CAM is, MODEL_VIS.GRAD_CAM)",
    "TENSORBOARD.MODEL_VIS.LAYER_LIST": "it names the layers of activation plots (Grad-CAM's: GRAD_CAM.LAYER_LIST)",
    "TENSORBOARD.MODEL_VIS.TOPK_PREDS": "Grad-CAM shows the top class, or the true one (GRAD_CAM.USE_TRUE_LABEL)",
    "TRAIN.CHECKPOINT_TYPE": "checkpoints are always read as PyTorch files",
    "TEST.CHECKPOINT_TYPE": "checkpoints are always read as PyTorch files",
    "MULTIGRID.DEFAULT_B": "the multigrid schedule derives it from TRAIN.BATCH_SIZE",
    "MULTIGRID.DEFAULT_T": "the multigrid schedule derives it from DATA.NUM_FRAMES",
    "MULTIGRID.DEFAULT_S": "the multigrid schedule derives it from DATA.TRAIN_CROP_SIZE",
    "MULTIGRID.LONG_CYCLE_SAMPLING_RATE": "the multigrid schedule derives it from DATA.SAMPLING_RATE",
}

_CAFFE2 = (
    "Caffe2 .pkl checkpoints are not read by vov3d; convert the weights to a PyTorch checkpoint (a state dict "
    "with PySlowFast's tensor names, saved with torch.save) or start from a PyTorch checkpoint, then set "
    "CHECKPOINT_TYPE pytorch (or drop the key)"
)
# PyTorchVideo's create_x3d adds a shortcut's BatchNorm only where a block changes the width. In
# every X3D size the stem and res2 both have round_width(12 * 2.0) = 24 channels, so the first res2
# block's strided shortcut has no BatchNorm there, while PySlowFast's X3D (ours, the paper's) has
# one (s2.pathway0_res0.branch1_bn): another network, which neither trains nor loads like ours.
_PTVX3D = (
    "PyTorchVideo's X3D is another network than the X3D of PySlowFast and the paper (the first res2 block "
    "has no BatchNorm on its strided shortcut, as PyTorchVideo adds one only where the width changes), so it "
    "neither trains nor loads weights as X3D does; use MODEL.MODEL_NAME X3D with MODEL.ARCH x3d (as in "
    "configs/Kinetics/x3d/X3D_*.yaml), which also loads PySlowFast's X3D checkpoints"
)
REFUSED_VALUES: dict[str, dict[Any, str]] = {
    "TRAIN.CHECKPOINT_TYPE": {"caffe2": _CAFFE2},
    "TEST.CHECKPOINT_TYPE": {"caffe2": _CAFFE2},
    "MODEL.MODEL_NAME": {"PTVX3D": _PTVX3D},
}


def ignored_rule(key: str) -> Optional[tuple[str, Any]]:
    """``(name, expected value)`` when ``key`` (dotted) or a section holding it is ignored, else None."""
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
        name = ".".join(parts[:n])
        if name in IGNORED_KEYS:
            return name, IGNORED_KEYS[name]
    return None


def ignore_note(name: str) -> str:
    """Why the ignored key (or section) ``name`` is ignored, for its one-line warning."""
    return IGNORE_NOTES.get(name, "it has no effect on X3D or VoV3D")


def refusal(key: str, value: Any) -> Optional[str]:
    """Why ``key`` (dotted) cannot take ``value``, and what to use instead; None when it can."""
    return REFUSED_VALUES.get(key, {}).get(value) if isinstance(value, str) else None
