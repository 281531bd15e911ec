"""Which files are videos: one list of suffixes for every tool that searches folders for videos."""

from __future__ import annotations

import os

VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv",
)  # fmt: skip


def is_video_file(name: str) -> bool:
    """A video by its suffix (any case); hidden files (``.x.mp4``, partial outputs) are not."""
    base = os.path.basename(name)
    return base.lower().endswith(VIDEO_SUFFIXES) and not base.startswith(".")
