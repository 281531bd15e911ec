"""One list of video suffixes: any case, and hidden (partial) files are not videos."""

from vov3d.datasets.video_files import VIDEO_SUFFIXES, is_video_file


def test_is_video_file() -> None:
    assert all(is_video_file(f"a/clip{suffix.upper()}") for suffix in VIDEO_SUFFIXES)
    assert {".mp4", ".webm", ".mkv", ".avi", ".wmv"} <= set(VIDEO_SUFFIXES)
    assert not any(map(is_video_file, ["a/.clip.mp4", "clip.mp4.txt", "frames/00001.jpg", "train.csv"]))
