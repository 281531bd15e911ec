"""Fixtures of the dataset tests: captured vov3d log records, the real videos folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def vov3d_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog for the ``vov3d`` logger, whether or not setup_logging stopped it propagating."""
    logger = logging.getLogger("vov3d")
    propagate, level = logger.propagate, logger.level
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate, logger.level = propagate, level


@pytest.fixture(scope="session")
def real_videos(shared_dir: Path) -> Path:
    """../shared/data/real-videos (see its SOURCES.md); skipped with a reason when absent."""
    folder = shared_dir / "data" / "real-videos"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the real-video tests need it")
    return folder
