"""Shared test fixtures: paths to the repository, its configs and ../shared; an environment in
which every test, and every process a test starts, runs this checkout outside any launcher."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NoReturn

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED = REPO.parent / "shared"

# Set by torchrun, torch.distributed.launch and SLURM: a test run inside such a job must not
# believe it is one of its ranks.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
LAUNCHER_PREFIXES = ("SLURM_", "TORCHELASTIC_")


def checkout_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without launcher variables and with this checkout first on PYTHONPATH, so that
    ``python tools/x.py`` in a subprocess imports this vov3d, not an installed one."""
    kept = {k: v for k, v in environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith(LAUNCHER_PREFIXES)}
    paths = [str(REPO)] + [p for p in kept.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
    kept["PYTHONPATH"] = os.pathsep.join(paths)
    return kept


def _use_checkout_environ() -> dict[str, str]:
    """Apply ``checkout_environ`` to os.environ in place; the old values of the keys it changed."""
    clean = checkout_environ(os.environ)
    changed = {k: v for k, v in os.environ.items() if clean.get(k) != v}
    for key in changed:
        os.environ.pop(key)
    os.environ.update(clean)
    return changed


# On import, before any test module copies os.environ (tests/engine/conftest.py's SUBPROCESS_ENV).
_CHANGED = _use_checkout_environ()


@pytest.fixture(autouse=True, scope="session")
def clean_environment() -> Iterator[None]:
    """No launcher variables and this checkout on PYTHONPATH for the whole session (set on import,
    see above); the caller's values come back when the session ends."""
    yield
    os.environ.update(_CHANGED)


def missing(reason: str) -> NoReturn:
    """Skip a test whose ../shared material is absent; under CI (CI=true) fail instead, so that a
    CI job without ../shared cannot pass by silently skipping."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: ../shared must be present)", pytrace=False)
    pytest.skip(reason)


def shared_absent(path: Path) -> NoReturn:
    """``missing`` for ``path`` under ../shared, in a reader's terms: what ../shared is, where it
    belongs, what of it this test needs, and that the tests that do not need it still run."""
    where, needed = os.path.relpath(SHARED, REPO), os.path.relpath(path, REPO)
    if not SHARED.is_dir():
        part = "" if path == SHARED else f"; this test needs {needed}"
        missing(
            f"the project's reference material and sample videos are not here (expected beside the checkout, "
            f"as {where}){part}; the tests that do not need them run as usual"
        )
    missing(
        f"{needed} is not in {where} (the project's reference material and sample videos); this test needs it, "
        "the tests that do not need it run as usual"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_shared(path): needs ../shared/<path>; skipped, or failed under CI")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs_shared"):
        path = SHARED / mark.args[0]
        if not path.exists():
            shared_absent(path)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (reference files and real videos); skipped where absent."""
    if not SHARED.is_dir():
        shared_absent(SHARED)
    return SHARED


@pytest.fixture(scope="session")
def real_videos(shared_dir: Path) -> Path:
    """../shared/data/real-videos (see its SOURCES.md); skipped with a reason when absent."""
    folder = shared_dir / "data" / "real-videos"
    if not folder.is_dir():
        shared_absent(folder)
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


@pytest.fixture(scope="session")
def small_motion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small motion demo (Kinetics format, 8 classes): 24 training videos in which no two clips
    are alike, so the order of samples and every augmentation draw show in trained weights."""
    from vov3d.datasets.motion_demo import DemoSpec, make_motion_dataset

    root = tmp_path_factory.mktemp("small_motion")
    spec = DemoSpec(
        train_per_class=3, val_per_class=1, test_per_class=1, width=48, height=40, min_frames=12, max_frames=16
    )
    make_motion_dataset(str(root), spec, processes=1)
    return root
