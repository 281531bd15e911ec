"""The test environment itself: subprocesses run this checkout outside any launcher, tests that need
../shared fail under CI when it is missing, and no file needs a Python newer than setup.py allows."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, checkout_environ


def test_launcher_variables_are_cleared_and_this_checkout_comes_first() -> None:
    dirty = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "h",
             "MASTER_PORT": "1", "SLURM_PROCID": "3", "TORCHELASTIC_RUN_ID": "x", "HOME": "/home/me",
             "PYTHONPATH": "/elsewhere"}  # fmt: skip
    clean = checkout_environ(dirty)
    assert set(clean) == {"HOME", "PYTHONPATH"}
    assert clean["PYTHONPATH"].split(os.pathsep) == [str(REPO), "/elsewhere"]


def test_a_subprocess_sees_the_clean_environment_and_imports_this_checkout(tmp_path: Path) -> None:
    code = "import json, os, vov3d; print(json.dumps([vov3d.__file__, sorted(os.environ)]))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    package, names = json.loads(result.stdout)
    assert Path(package).is_relative_to(REPO / "vov3d")
    assert not [n for n in names if n in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR") or n.startswith("SLURM_")]


SHARED_TEST = """
import pytest

def test_uses_shared(shared_dir):
    pass

@pytest.mark.needs_shared("reference/nothing-here.md")
def test_marked():
    pass
"""


@pytest.mark.parametrize("ci, outcome", [("", "2 skipped"), ("true", "2 errors")])
def test_missing_shared_skips_alone_and_fails_under_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    """Run a two-test file as pytest sees it here, with ../shared pointed at a missing folder beside
    the checkout (as a fresh clone has it)."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(SHARED_TEST)
    conftest = tmp_path / "conftest.py"
    conftest.write_text(
        "import tests.conftest as c\n"
        "c.SHARED = c.REPO.parent / 'no-shared'\n"
        "from tests.conftest import *  # noqa: F401,F403  (the fixtures and hooks)\n"
    )
    env = {**os.environ, "CI": ci}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(probe), "--rootdir", str(tmp_path),
         "--basetemp", str(tmp_path / "inner")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert re.search(rf"\b{outcome}\b", result.stdout), result.stdout[-2000:]
    assert (result.returncode != 0) == (ci == "true")
    # In a reader's terms: what is missing, where it belongs, and that the rest runs (no absolute path).
    reasons = set(re.findall(r"the project's reference material and sample videos .*? run as usual", result.stdout))
    assert reasons == {
        "the project's reference material and sample videos are not here (expected beside the checkout, as "
        f"../no-shared){needs}; the tests that do not need them run as usual"
        for needs in ("", "; this test needs ../no-shared/reference/nothing-here.md")
    }, result.stdout[-2000:]


def _python_requires() -> tuple[int, int]:
    found = re.search(r'python_requires=">=(\d+)\.(\d+)"', (REPO / "setup.py").read_text())
    assert found, "setup.py names no python_requires floor"
    return int(found[1]), int(found[2])


# Names a newer Python added (3.10 and later) that a 3.9 interpreter does not have.
NEWER_TYPING = {"TypeAlias", "ParamSpec", "Concatenate", "TypeGuard", "Self", "Never", "LiteralString", "Unpack",
                "TypeVarTuple", "assert_never", "assert_type", "reveal_type", "override"}  # fmt: skip
NEWER_CALL_KEYWORDS = {("zip", "strict"), ("dataclass", "slots"), ("dataclass", "kw_only")}
NEWER_ATTRIBUTES = {("itertools", "pairwise"), ("contextlib", "chdir"), ("datetime", "UTC"), ("typing", "Self")}


def _is_type(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type(node.left) and _is_type(node.right)
    return isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)) or (
        isinstance(node, ast.Constant) and node.value is None
    )


def _runtime_union(node: ast.AST) -> bool:
    """``A | B`` of types: a TypeError on 3.9 where it is evaluated (isinstance, eager annotations)."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and _is_type(node)


def newer_python_uses(path: Path, floor: tuple[int, int]) -> list[str]:
    """What in ``path`` a Python at ``floor`` cannot run, as 'file:line: what'."""
    text = path.read_text()
    try:
        tree = ast.parse(text, feature_version=floor)
    except SyntaxError as e:
        return [f"{path}:{e.lineno}: syntax newer than Python {floor[0]}.{floor[1]}: {e.msg}"]
    lazy = "from __future__ import annotations" in text
    found = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.module == "typing":
            found += [f"{where}: typing.{a.name}" for a in node.names if a.name in NEWER_TYPING]
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            found += [f"{where}: {name}({k.arg}=...)" for k in node.keywords if (name, k.arg) in NEWER_CALL_KEYWORDS]
            if name in ("isinstance", "issubclass") and len(node.args) == 2 and _runtime_union(node.args[1]):
                found.append(f"{where}: {name} with an X | Y type")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in NEWER_ATTRIBUTES:
                found.append(f"{where}: {node.value.id}.{node.attr}")
        elif not lazy and isinstance(node, (ast.arg, ast.AnnAssign)) and node.annotation is not None:
            if any(_runtime_union(n) for n in ast.walk(node.annotation)):
                found.append(f"{where}: an X | Y annotation without 'from __future__ import annotations'")
        elif not lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            if any(_runtime_union(n) for n in ast.walk(node.returns)):
                found.append(f"{where}: an X | Y return annotation without 'from __future__ import annotations'")
    return found


def test_nothing_needs_a_python_newer_than_setup_py_allows() -> None:
    floor = _python_requires()
    files = [p for folder in ("vov3d", "tests", "tools") for p in sorted((REPO / folder).rglob("*.py"))]
    files.append(REPO / "setup.py")
    found = [line for path in files for line in newer_python_uses(path, floor)]
    assert not found, "\n".join(found)


def test_the_checker_finds_what_it_looks_for(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f(x):\n    match x:\n        case 1:\n            pass\n")
    assert "syntax newer than Python 3.9" in newer_python_uses(probe, (3, 9))[0]
    probe.write_text(
        "import itertools\nfrom typing import TypeAlias\n"
        "def f(x: int | None) -> None:\n    zip([], [], strict=True)\n    itertools.pairwise([])\n"
        "    isinstance(x, int | str)\n"
    )
    found = newer_python_uses(probe, (3, 9))
    assert len(found) == 5, found
