"""Fixtures of the dataset tests: captured vov3d log records, the real videos folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_videos(shared_dir: Path) -> Path:
    """../shared/data/real-videos (see its SOURCES.md); skipped with a reason when absent."""
    folder = shared_dir / "data" / "real-videos"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the real-video tests need it")
    return folder
