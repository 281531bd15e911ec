"""Write a file under a temporary name and rename it only once complete, so that a reader never
sees half a file: checkpoints, downloads, exports. Whatever does the writing (``torch.save``, a
download, an exporter) writes to the temporary path it is given."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def atomic_path(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary path beside ``path``, hidden (``.NAME.RANDOM{suffix}``), to write the new file to.

    When the block ends without an error the file is flushed to disk and renamed to ``path``;
    when it raises, the temporary file is removed. So ``path`` holds either its old contents or the
    complete new file, even after a crash mid-write. The file is created by the writer, with the
    usual permissions.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}{suffix}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); not possible on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
