"""The one override convention: trailing KEY VALUE pairs, --opts, or both, for every command."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from vov3d.cli.args import add_overrides, looks_like_key, parse_with_overrides


def parser_with_list(dest: str) -> argparse.ArgumentParser:
    """A parser like run_net's (``--cfg FILE ...``) or predict's (videos as positionals)."""
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--cfg", dest="cfg_files", nargs="+")
    parser.add_argument("--topk", type=int, default=5)
    if dest == "videos":
        parser.add_argument("videos", nargs="+")
    add_overrides(parser)
    return parser


def test_trailing_then_opts_in_order() -> None:
    parser = parser_with_list("cfg_files")
    args = parse_with_overrides(
        parser, ["--cfg", "a.yaml", "NUM_GPUS", "8", "--opts", "RNG_SEED", "3"], after="cfg_files"
    )
    assert args.cfg_files == ["a.yaml"] and args.opts == ["NUM_GPUS", "8", "RNG_SEED", "3"]


def test_overrides_after_a_positional_list_and_other_flags(tmp_path: Path) -> None:
    video = tmp_path / "CLIP.MP4"  # upper case, but an existing file: a video, not a key
    video.write_bytes(b"")
    parser = parser_with_list("videos")
    argv = ["--topk", "2", str(video), "NUM_GPUS", "0", "SOLVER.BASE_LR", "-0.5"]
    args = parse_with_overrides(parser, argv, after="videos")
    assert args.videos == [str(video)] and args.opts == ["NUM_GPUS", "0", "SOLVER.BASE_LR", "-0.5"]


def test_trailing_tokens_without_a_list_are_overrides() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="d")
    add_overrides(parser)
    args = parse_with_overrides(parser, ["SOLVER.MAX_EPOCH", "1", "--data", "x"])
    assert (args.data, args.opts) == ("x", ["SOLVER.MAX_EPOCH", "1"])


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--cfg", "a.yaml", "--learning_rate", "3"], "unrecognized arguments: --learning_rate"),
        (["--cfg", "a.yaml", "NUM_GPUS", "8", "TRAIN.BATCH_SIZE"], "'TRAIN.BATCH_SIZE' has no value"),
        (["--cfg", "NUM_GPUS", "8"], "expected a cfg file before the KEY VALUE overrides, got 'NUM_GPUS'"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(argv: list, words: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        parse_with_overrides(parser_with_list("cfg_files"), argv, after="cfg_files")
    assert stop.value.code == 2 and words in capsys.readouterr().err


def test_a_parser_without_overrides_refuses_trailing_tokens(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parse_with_overrides(argparse.ArgumentParser(), ["NUM_GPUS", "8"])
    assert "unrecognized arguments: NUM_GPUS 8" in capsys.readouterr().err


def test_what_looks_like_a_key() -> None:
    assert looks_like_key("NUM_GPUS") and looks_like_key("TRAIN.BATCH_SIZE")
    assert not any(map(looks_like_key, ["configs/a.yaml", "clip.mp4", "train.batch_size", "8"]))
