"""Shared test fixtures: paths to the repository, its configs and ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (reference files and real videos); skip where absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: reference material and real videos are not available")
    return SHARED
