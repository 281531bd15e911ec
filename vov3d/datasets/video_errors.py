"""The error a video or frame folder that cannot be read raises, with messages for people."""

from __future__ import annotations


def worker_message(error_type: type, message: str) -> str:
    """The original message of an error that a loader worker raised.

    torch re-creates such an error in the main process from the worker's whole traceback text
    ("Caught X in DataLoader worker process 0. Original Traceback ..."), which buries the one line
    a user needs; the errors meant for users keep only that line."""
    if not message.startswith(f"Caught {error_type.__name__} in DataLoader worker"):
        return message
    marker = f"{error_type.__module__}.{error_type.__qualname__}: "
    return message.rsplit(marker, 1)[-1].strip() if marker in message else message


class VideoDecodeError(RuntimeError):
    """A video or frame folder cannot be read. The message starts with the file, then the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(worker_message(type(self), message))


def decode_error(path: str, reason: str) -> VideoDecodeError:
    return VideoDecodeError(f"{path}: {reason}")
