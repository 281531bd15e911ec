"""CI runs exactly the README's set-up commands: keep the two in step."""

from tests.conftest import REPO


def ci_commands() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith(("#", "set ", "cd "))]


def test_ci_runs_the_readme_commands_verbatim() -> None:
    readme = (REPO / "README.md").read_text().splitlines()
    commands = ci_commands()
    assert len(commands) == 2, commands
    for command in commands:
        assert command in readme, f"{command!r} is in .ci/run but not, verbatim, in README.md"


def test_ci_runs_pytest() -> None:
    assert "pytest" in ci_commands()[-1]
