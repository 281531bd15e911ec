"""The three annotation formats parse, and a malformed line names its file and line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vov3d.datasets.annotations import (
    FRAME_LIST_HEADER,
    AnnotationError,
    read_frame_list,
    read_kinetics_csv,
    read_ssv1_labels,
    read_ssv1_split,
    read_ssv2_labels,
    read_ssv2_split,
    write_frame_list,
)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_kinetics_csv(tmp_path: Path) -> None:
    csv = write(tmp_path / "train.csv", "a/x.mp4 3\nb/with space.webm 0\n\n")
    assert read_kinetics_csv(csv, "/data") == (["/data/a/x.mp4", "/data/b/with space.webm"], [3, 0])
    csv = write(tmp_path / "comma.csv", "x.mp4,7\n")
    assert read_kinetics_csv(csv, "", ",") == (["x.mp4"], [7])


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("a.mp4 1\nb.mp4\n", 2, "expected 'path label'"),
        ("a.mp4 1\nb.mp4 cat\n", 2, "not an integer"),
        ("a.mp4 -1\n", 1, "outside"),
        ("a.mp4 1\n\nb.mp4 400\n", 3, r"outside \[0, 400\)"),
    ],
)
def test_kinetics_csv_malformed_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    csv = write(tmp_path / "val.csv", text)
    with pytest.raises(AnnotationError, match=f"^{csv}:{line}: .*{message}"):
        read_kinetics_csv(csv, num_classes=400)


def test_empty_file_lists_no_videos(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="lists no videos"):
        read_kinetics_csv(write(tmp_path / "test.csv", "\n"))


def test_frame_list(tmp_path: Path) -> None:
    text = (
        "original_vido_id video_id frame_id path labels\n"
        'v1 0 0 v1/v1_000001.jpg ""\nv1 0 1 v1/v1_000002.jpg ""\n'
        'v2 1 0 v2/v2_000001.jpg "5"\n'
    )
    frames = read_frame_list(write(tmp_path / "train.csv", text), "/frames")
    assert frames == {
        "v1": ["/frames/v1/v1_000001.jpg", "/frames/v1/v1_000002.jpg"],
        "v2": ["/frames/v2/v2_000001.jpg"],
    }


@pytest.mark.parametrize(
    "text,line,message",
    [
        ('v1 0 0 v1/1.jpg ""\n', 1, "expected the header"),
        (
            'original_vido_id video_id frame_id path labels\nv1 0 0 v1/1.jpg ""\nv1 0 1\n',
            3,
            "expected 5 columns",
        ),
    ],
)
def test_frame_list_malformed(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path / "val.csv", text)
    with pytest.raises(AnnotationError, match=f"^{path}:{line}: {message}"):
        read_frame_list(path)


def test_ssv2_annotations(tmp_path: Path) -> None:
    labels = read_ssv2_labels(
        write(tmp_path / "labels.json", json.dumps({"Holding something": "0", "Pushing something": "1"}))
    )
    entries = [{"id": "12", "template": "Pushing [something]"}, {"id": 7, "template": "Holding [something]"}]
    split = write(tmp_path / "train.json", json.dumps(entries, indent=2))
    assert read_ssv2_split(split, labels) == (["12", "7"], [1, 0])


def test_ssv2_malformed_entries_name_their_line(tmp_path: Path) -> None:
    labels = {"Holding something": 0}
    text = '[\n  {"id": "1", "template": "Holding [something]"},\n  {"id": "2", "template": "Juggling"}\n]'
    path = write(tmp_path / "validation.json", text)
    with pytest.raises(AnnotationError, match=f"^{path}:3: template 'Juggling' of video 2 is not in the labels"):
        read_ssv2_split(path, labels)
    path = write(tmp_path / "missing.json", '[{"id": "1", "template": "Holding something"},\n {"id": "2"}]')
    with pytest.raises(AnnotationError, match=f"^{path}:2: expected an object with 'id' and 'template'"):
        read_ssv2_split(path, labels)
    path = write(tmp_path / "broken.json", '[{"id": "1",\n "template": "Holding something"\n')
    with pytest.raises(AnnotationError, match=f"^{path}:\\d+: not valid JSON"):
        read_ssv2_split(path, labels)
    path = write(tmp_path / "labels.json", '{"Holding something": "zero"}')
    with pytest.raises(AnnotationError, match="class id 'zero'"):
        read_ssv2_labels(path)


def test_ssv1_annotations(tmp_path: Path) -> None:
    labels = read_ssv1_labels(write(tmp_path / "labels.csv", "Holding something\nPushing something\n"))
    assert labels == {"Holding something": 0, "Pushing something": 1}
    split = write(tmp_path / "train.csv", "100;Pushing something\n101;Holding something\n")
    assert read_ssv1_split(split, labels) == (["100", "101"], [1, 0])


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("100;Holding something\n101 Holding something\n", 2, "expected 'video_id;template'"),
        ("100;Juggling\n", 1, "template .Juggling. is not in the labels file"),
        ("100;\n", 1, "expected 'video_id;template'"),
    ],
)
def test_ssv1_split_malformed(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path / "validation.csv", text)
    with pytest.raises(AnnotationError, match=f"^{path}:{line}: {message}"):
        read_ssv1_split(path, {"Holding something": 0})


def test_ssv1_labels_malformed(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=":2: empty line"):
        read_ssv1_labels(write(tmp_path / "a.csv", "Holding something\n\nPushing something\n"))
    with pytest.raises(AnnotationError, match=":2: template 'A' repeats line 1"):
        read_ssv1_labels(write(tmp_path / "b.csv", "A\nA\n"))


def test_write_frame_list_reads_back(tmp_path: Path) -> None:
    videos = {"9": ["9/9_000001.jpg", "9/9_000002.jpg"], "3": ["3/00001.jpg"]}
    path = tmp_path / "train.csv"
    path.write_text("an older list\n")
    write_frame_list(str(path), videos)
    assert path.read_text().splitlines() == [
        FRAME_LIST_HEADER,
        '9 0 0 9/9_000001.jpg ""',
        '9 0 1 9/9_000002.jpg ""',
        '3 1 0 3/00001.jpg ""',
    ]
    assert read_frame_list(str(path), "/f") == {k: [f"/f/{p}" for p in v] for k, v in videos.items()}
    assert [p.name for p in tmp_path.iterdir()] == ["train.csv"]  # the temporary file was renamed
