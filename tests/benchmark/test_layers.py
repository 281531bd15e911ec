"""The benchmarks measure; parsing their command lines is the cli's job, so no arrow runs back up."""

from __future__ import annotations

import ast
from pathlib import Path

import vov3d.benchmark


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_benchmark_modules_import_neither_the_cli_nor_argparse() -> None:
    files = sorted(Path(vov3d.benchmark.__file__).parent.glob("*.py"))
    assert len(files) >= 4
    for path in files:
        modules = imported_modules(path)
        assert not {m for m in modules if m == "vov3d.cli" or m.startswith("vov3d.cli.")}, path.name
        assert "argparse" not in modules, path.name
