"""Lists of names cut short for log lines and errors."""

from __future__ import annotations

from vov3d.utils.text import first_of


def test_names_up_to_the_limit_then_how_many_more() -> None:
    assert first_of([], 2) == ""
    assert first_of(["a", "b"], 2) == "a, b"
    assert first_of(["a", "b", "c", "d", "e"], 2) == "a, b, and 3 more"
