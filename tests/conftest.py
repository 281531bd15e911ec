"""Shared test fixtures: paths to the repository, its configs and ../shared."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (reference files and real videos); skip where absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: reference material and real videos are not available")
    return SHARED


@pytest.fixture(scope="session")
def real_videos(shared_dir: Path) -> Path:
    """../shared/data/real-videos (see its SOURCES.md); skipped with a reason when absent."""
    folder = shared_dir / "data" / "real-videos"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the real-video tests need it")
    return folder


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> Iterator[None]:
    """Test tensors are tiny: threads only cost time, a lot of it when other jobs share the cores,
    and one thread keeps in-process training deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def vov3d_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog for the ``vov3d`` loggers, whether or not setup_logging stopped them propagating."""
    logger = logging.getLogger("vov3d")
    propagate, level = logger.propagate, logger.level
    logger.propagate = False  # each record once, whatever ran before
    logger.setLevel(logging.INFO)
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate, logger.level = propagate, level
