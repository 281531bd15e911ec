"""Keys that published PySlowFast / VoV3D YAML files set but that have no effect on these networks.
MIXUP.* and AUG.ENABLE / AA_TYPE / INTERPOLATION are real keys (defaults.py), not listed here.

They are accepted with a one-line warning. A value other than ``ANY`` must match: another value
would ask for behaviour these networks do not have, and is a config error (see ``node.py``).
"""

from __future__ import annotations

from typing import Any, Optional

ANY = object()
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
    # PySlowFast's AUG keys beyond RandAugment (AUG.ENABLE, AA_TYPE, INTERPOLATION): repeated augmentation
    # and random erasing are not implemented, so only their "off" values are accepted.
    "AUG.NUM_SAMPLE": 1,
    "AUG.RE_PROB": 0.0,
    "AUG.RE_MODE": ANY,
    "AUG.RE_COUNT": ANY,
    "AUG.RE_SPLIT": ANY,
}


def ignored_rule(key: str) -> Optional[tuple[str, Any]]:
    """``(name, expected value)`` when ``key`` (dotted) or a section holding it is ignored, else None."""
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
        name = ".".join(parts[:n])
        if name in IGNORED_KEYS:
            return name, IGNORED_KEYS[name]
    return None
