"""tools/: thin wrappers around the commands in vov3d/cli, and every tool DATA.md names runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

TOOLS = sorted(path.stem for path in (REPO / "tools").glob("*.py"))


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_is_a_wrapper_of_its_cli_module(tool: str) -> None:
    """Each command's main lives in vov3d/cli/<tool>.py, where it can be imported and tested."""
    text = (REPO / "tools" / f"{tool}.py").read_text()
    assert f"from vov3d.cli.{tool} import main\n" in text and len(text.splitlines()) <= 12, tool


def test_every_tool_data_md_names_runs() -> None:
    scripts = sorted(set(re.findall(r"python (tools/\w+\.py)", (REPO / "DATA.md").read_text())))
    prepare = {"resize_videos", "extract_frames", "make_ssv1_lists", "scan_dataset", "make_demo_dataset"}
    assert {f"tools/{tool}.py" for tool in prepare} <= set(scripts)
    env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout, whatever is installed
    for script in scripts:
        result = subprocess.run(
            [sys.executable, script, "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0 and "usage" in result.stdout, (script, result.stderr)
