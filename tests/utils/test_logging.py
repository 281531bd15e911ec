"""Logging: the main process prints and writes stdout.log; json_stats lines are parseable."""

import json
import logging
from pathlib import Path

import pytest

from vov3d.utils.logging import json_stats_line, log_json_stats, setup_logging
from vov3d.utils.run_layout import STATS_MARKER, RunFolder


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    setup_logging(None, rank=0)


def test_rank0_writes_stdout_log(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    setup_logging(str(tmp_path), rank=0)
    logging.getLogger("vov3d.test").info("hello from rank 0")
    assert "hello from rank 0" in capsys.readouterr().out
    assert "hello from rank 0" in Path(RunFolder(str(tmp_path)).log_path()).read_text()


def test_other_ranks_are_quiet_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rank1_log = Path(RunFolder(str(tmp_path)).log_path(rank=1))
    setup_logging(str(tmp_path), rank=1)
    logging.getLogger("vov3d.test").info("quiet")
    assert "quiet" not in capsys.readouterr().out
    assert not rank1_log.exists()
    setup_logging(str(tmp_path), rank=1, all_ranks=True)
    logging.getLogger("vov3d.test").info("rank one speaks")
    assert "rank one speaks" in rank1_log.read_text()
    assert "rank one speaks" not in capsys.readouterr().out


def test_setup_twice_does_not_duplicate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    setup_logging(str(tmp_path), rank=0)
    setup_logging(str(tmp_path), rank=0)
    logging.getLogger("vov3d.test").info("once")
    assert capsys.readouterr().out.count("once") == 1


def test_json_stats(tmp_path: Path) -> None:
    setup_logging(str(tmp_path), rank=0)
    line = json_stats_line({"loss": 0.123456789, "_type": "train_iter", "epoch": "1/10"})
    assert line.startswith(STATS_MARKER)
    assert list(json.loads(line[len(STATS_MARKER) :])) == ["_type", "epoch", "loss"]
    run = RunFolder(str(tmp_path))
    log_json_stats({"loss": 1.5, "_type": "train_epoch"}, run.root)
    log_json_stats({"loss": 1.0, "_type": "train_epoch"}, run.root)
    assert [s["loss"] for s in run.read_stats()] == [1.5, 1.0]
    assert STATS_MARKER in Path(run.log_path()).read_text()
