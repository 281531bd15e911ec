"""``pip install .`` (not editable) ships the configs as package data: the installed commands find
their default configs without the source checkout, and ``--cfg configs/...`` still works here."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of this checkout, unpacked as pip installs a pure-Python wheel."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(REPO / "vov3d", source / "vov3d", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(CONFIGS, source / "configs")
    shutil.copy(REPO / "setup.py", source)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = root.glob("vov3d-*.whl")
    site = root / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    return site


def run_installed(site: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """``code`` in a Python that sees the installed copy only (not this checkout, not its cwd)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_every_config_is_package_data(installed: Path) -> None:
    shipped = sorted(
        p.relative_to(installed / "vov3d" / "configs") for p in (installed / "vov3d" / "configs").rglob("*.yaml")
    )
    assert shipped == sorted(p.relative_to(CONFIGS) for p in CONFIGS.rglob("*.yaml"))


def test_installed_commands_find_their_configs(installed: Path, tmp_path: Path) -> None:
    code = (
        "import vov3d, vov3d.cli.quickstart as q, vov3d.benchmark.model as m\n"
        "from vov3d.config import load_config\n"
        "cfg = load_config([str(q.DEFAULT_CFG)])\n"
        "print(vov3d.__file__, q.DEFAULT_CFG, m.DEFAULT_MODELS[0], cfg.OUTPUT_DIR, sep='\\n')\n"
    )
    result = run_installed(installed, code, tmp_path)
    assert result.returncode == 0, result.stderr
    package, quickstart_cfg, model_cfg, output_dir = result.stdout.split()
    assert Path(package).is_relative_to(installed) and Path(quickstart_cfg).is_relative_to(installed)
    assert Path(model_cfg).is_relative_to(installed) and output_dir == "./output/quickstart"


def test_entry_points_run_from_the_installed_copy(installed: Path, tmp_path: Path) -> None:
    (info,) = installed.glob("vov3d-*.dist-info")
    points = configparser.ConfigParser()
    points.read(info / "entry_points.txt")
    scripts = dict(points["console_scripts"])
    assert {"vov3d-run", "vov3d-predict", "vov3d-export", "vov3d-benchmark"} <= set(scripts)
    tiny = installed / "vov3d" / "configs" / "quick" / "vov3d_tiny.yaml"
    code = (
        "import importlib, sys\n"
        f"for target in {sorted(scripts.values())!r}:\n"
        "    module, function = target.split(':')\n"
        "    try:\n"
        "        getattr(importlib.import_module(module), function)(['--help'])\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0, target\n"
        "from vov3d.cli.run_net import main\n"
        f"sys.exit(main(['--cfg', {str(tiny)!r}, 'TRAIN.ENABLE', 'False', 'TEST.ENABLE', 'False']))\n"
    )
    result = run_installed(installed, code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("usage:") == len(scripts)
    assert (tmp_path / "output" / "quick" / "vov3d_tiny" / "config.yaml").is_file()  # its own folder, under cwd
