"""Write-then-rename: the file at a path is either the old one or the complete new one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vov3d.utils.atomic import atomic_path


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "weights.pyth"  # the folder is made
    with atomic_path(str(path), suffix=".part") as tmp:
        assert Path(tmp).parent == path.parent and Path(tmp).name.startswith(".weights.pyth.")
        assert tmp.endswith(".part") and not path.exists()
        Path(tmp).write_bytes(b"complete")
    assert path.read_bytes() == b"complete" and os.listdir(path.parent) == ["weights.pyth"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "weights.pyth"
    path.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), atomic_path(str(path)) as tmp:
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["weights.pyth"]


def test_temporary_names_differ_between_writers(tmp_path: Path) -> None:
    with atomic_path(str(tmp_path / "a")) as first, atomic_path(str(tmp_path / "a")) as second:
        assert first != second
        Path(first).write_bytes(b"1")
        Path(second).write_bytes(b"2")
    assert (tmp_path / "a").read_bytes() == b"1"  # the outer block finishes last


def test_the_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    """As ``open`` would make it (the umask decides), not the 0600 of a private temporary file."""
    umask = os.umask(0o022)
    try:
        with atomic_path(str(tmp_path / "weights.pyth")) as tmp:
            Path(tmp).write_bytes(b"complete")
    finally:
        os.umask(umask)
    assert (tmp_path / "weights.pyth").stat().st_mode & 0o777 == 0o644
