"""The SLURM helpers of vov3d.utils.distributed: node lists and task counts as SLURM writes them."""

from __future__ import annotations

import pytest

from vov3d.utils.distributed import expand_nodelist, tasks_on_node


@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("a[01-03,07]", ["a01", "a02", "a03", "a07"]),
        ("b1,c2", ["b1", "c2"]),
        ("gpu-[1-2]-[a,b]", ["gpu-1-a", "gpu-1-b", "gpu-2-a", "gpu-2-b"]),
        ("node[8-10],login", ["node8", "node9", "node10", "login"]),
    ],
)
def test_slurm_node_lists(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


def test_slurm_tasks_per_node() -> None:
    assert [tasks_on_node("8(x2),4", node) for node in range(3)] == [8, 8, 4]
