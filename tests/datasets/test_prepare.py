"""The preparation library: frame folders appear only when complete."""

from __future__ import annotations

from pathlib import Path

from tests.datasets.helpers import make_video
from vov3d.datasets.prepare import extract_video


def test_extract_video_redoes_a_partial_folder_and_keeps_a_complete_one(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.webm", 6, fps=12)
    partial = tmp_path / "frames" / ".7.part"
    partial.mkdir(parents=True)
    (partial / "7_000099.jpg").write_bytes(b"left by a killed run")
    frames = extract_video(video, str(tmp_path / "frames"), "7")
    assert frames == [f"7/7_{k:06d}.jpg" for k in range(1, 16)] and not partial.exists()
    (tmp_path / "frames" / "7" / "7_000015.jpg").unlink()  # a complete folder is never redone
    assert extract_video(str(tmp_path / "gone.webm"), str(tmp_path / "frames"), "7") == frames[:-1]


def test_extract_video_fills_an_empty_folder(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.webm", 6, fps=12)
    (tmp_path / "frames" / "7").mkdir(parents=True)
    assert len(extract_video(video, str(tmp_path / "frames"), "7")) == 15
