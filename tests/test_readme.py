"""CI runs exactly the README's set-up commands, and README's output folders are the ones runs
use: keep them in step."""

import os
import re

from tests.conftest import CONFIGS, REPO
from vov3d.config import load_config


def ci_commands() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith(("#", "set ", "cd ", "export "))]


def test_ci_runs_the_readme_commands_verbatim() -> None:
    readme = (REPO / "README.md").read_text().splitlines()
    commands = ci_commands()
    assert len(commands) == 2, commands
    for command in commands:
        assert command in readme, f"{command!r} is in .ci/run but not, verbatim, in README.md"


def test_ci_runs_pytest() -> None:
    assert "pytest" in ci_commands()[-1]


def test_ci_marks_itself_as_ci() -> None:
    """With CI=true, tests whose ../shared material is missing fail instead of skipping."""
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert any(line.startswith("export CI=true") for line in lines)


def test_readme_output_folders_are_the_ones_runs_use() -> None:
    readme = (REPO / "README.md").read_text()
    examples = re.findall(r"`--cfg (configs/\S+\.yaml)` writes to\s+`(output/\S+)/`", readme)
    assert examples, "README no longer shows where a config writes"
    for config, folder in examples:
        assert load_config([str(REPO / config)]).OUTPUT_DIR == folder, config
    quickstart = load_config([str(CONFIGS / "quickstart" / "vov3d_motion.yaml")]).OUTPUT_DIR
    assert f"(`{os.path.normpath(quickstart)}/`)" in readme
