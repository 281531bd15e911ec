"""Text for people: lists of names cut short in log lines and error messages."""

from __future__ import annotations

from collections.abc import Sequence


def first_of(names: Sequence[str], limit: int) -> str:
    """The first ``limit`` names, comma-separated, then how many were left out:
    ``a, b, c, and 4 more``. Log lines stay short however many files are broken."""
    shown = ", ".join(names[:limit])
    return shown + (f", and {len(names) - limit} more" if len(names) > limit else "")
