"""Parsers of the annotation files PySlowFast and the original VoV3D read, unchanged on disk.

Every parser fails on the first malformed line with an ``AnnotationError`` naming the file and the
line number, because a silently skipped line would shift labels or drop videos.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Optional

from vov3d.utils.atomic import atomic_path

FRAME_LIST_HEADER = "original_vido_id video_id frame_id path labels"


class AnnotationError(ValueError):
    """An annotation file is malformed; the message is ``file:line: what is wrong``."""


def _error(path: str, line: int, reason: str) -> AnnotationError:
    return AnnotationError(f"{path}:{line}: {reason}")


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield number, line


def _nonempty(path: str, items: list) -> list:
    if not items:
        raise AnnotationError(f"{path}: lists no videos")
    return items


def read_kinetics_csv(
    path: str, prefix: str = "", separator: str = " ", num_classes: Optional[int] = None
) -> tuple[list[str], list[int]]:
    """``path label`` lines (no header) -> video paths joined to ``prefix``, integer labels.

    The label is after the last separator, so paths may contain the separator.
    """
    paths, labels = [], []
    for number, line in _lines(path):
        fields = line.rsplit(separator, 1)
        if len(fields) != 2 or not fields[0].strip():
            raise _error(path, number, f"expected 'path{separator}label', got {line!r}")
        video, label_text = fields[0].strip(), fields[1].strip()
        try:
            label = int(label_text)
        except ValueError:
            raise _error(path, number, f"label {label_text!r} is not an integer") from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            limit = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise _error(path, number, f"label {label} is outside {limit} (MODEL.NUM_CLASSES)")
        paths.append(os.path.join(prefix, video))
        labels.append(label)
    return _nonempty(path, paths), labels


def read_frame_list(path: str, prefix: str = "") -> dict[str, list[str]]:
    """A PySlowFast frame list -> {original video id: [frame paths joined to prefix, in file order]}.

    The first line is the header ``original_vido_id video_id frame_id path labels`` (sic); rows
    have those five space-separated columns. Labels come from the split files, not this column.
    """
    frames: dict[str, list[str]] = {}
    lines = _lines(path)
    first = next(lines, None)
    if first is None or not first[1].startswith("original_vido_id"):
        raise _error(path, first[0] if first else 1, f"expected the header {FRAME_LIST_HEADER!r}")
    for number, line in lines:
        row = line.split()
        if len(row) != 5:
            raise _error(path, number, f"expected 5 columns ({FRAME_LIST_HEADER}), got {len(row)}: {line!r}")
        frames.setdefault(row[0], []).append(os.path.join(prefix, row[3]))
    return _nonempty(path, frames)


def write_frame_list(path: str, videos: dict[str, list[str]]) -> None:
    """Write a PySlowFast frame list (``FRAME_LIST_HEADER``, then a row per frame, videos numbered
    in order) to a temporary name, then rename: an interrupted run leaves the old list whole."""
    rows = [FRAME_LIST_HEADER]
    for number, (video, frames) in enumerate(videos.items()):
        rows += [f'{video} {number} {k} {frame} ""' for k, frame in enumerate(frames)]
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def _template_key(template: str) -> str:
    """SSv2 split files write ``Putting [something] on [something]``; the label file has no brackets."""
    return template.replace("[", "").replace("]", "")


def _json(path: str) -> object:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _error(path, e.lineno, f"not valid JSON: {e.msg}") from None


def _json_entries(path: str) -> Iterator[tuple[int, object]]:
    """(line number, entry) of a top-level JSON list, so errors can point at the entry's line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text.startswith("[", pos):
        raise _error(path, 1, "expected a JSON list of videos")
    pos, line, counted = pos + 1, 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            entry, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise _error(path, e.lineno, f"not valid JSON: {e.msg}") from None
        yield line, entry


def read_ssv2_labels(path: str) -> dict[str, int]:
    """``something-something-v2-labels.json``: {template: "id"} -> {template: id}."""
    data = _json(path)
    if not isinstance(data, dict) or not data:
        raise _error(path, 1, "expected a JSON object {template: class id}")
    labels = {}
    for template, value in data.items():
        try:
            labels[template] = int(value)
        except (TypeError, ValueError):
            raise AnnotationError(f"{path}: class id {value!r} of {template!r} is not an integer") from None
    return labels


def read_ssv2_split(path: str, label_ids: dict[str, int]) -> tuple[list[str], list[int]]:
    """``something-something-v2-{train,validation}.json``: [{id, template, ...}] -> ids, labels."""
    ids, labels = [], []
    for line, entry in _json_entries(path):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise _error(path, line, f"expected an object with 'id' and 'template', got {entry!r:.80}")
        key = _template_key(str(entry["template"]))
        if key not in label_ids:
            raise _error(path, line, f"template {key!r} of video {entry['id']} is not in the labels file")
        ids.append(str(entry["id"]))
        labels.append(label_ids[key])
    return _nonempty(path, ids), labels


def read_ssv1_labels(path: str) -> dict[str, int]:
    """``something-something-v1-labels.csv``: one template per line; the id is the line index."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().rstrip("\n").split("\n")
    labels: dict[str, int] = {}
    for index, template in enumerate(lines):
        template = template.strip()
        if not template:
            raise _error(path, index + 1, "empty line: class ids are line numbers, so none may be blank")
        if template in labels:
            raise _error(path, index + 1, f"template {template!r} repeats line {labels[template] + 1}")
        labels[template] = index
    return labels


def read_ssv1_split(path: str, label_ids: dict[str, int]) -> tuple[list[str], list[int]]:
    """``something-something-v1-{train,validation}.csv``: ``video_id;template`` lines -> ids, labels."""
    ids, labels = [], []
    for number, line in _lines(path):
        video, sep, template = line.partition(";")
        if not sep or not video.strip() or not template.strip():
            raise _error(path, number, f"expected 'video_id;template', got {line!r}")
        key = _template_key(template.strip())
        if key not in label_ids:
            raise _error(path, number, f"template {key!r} is not in the labels file")
        ids.append(video.strip())
        labels.append(label_ids[key])
    return _nonempty(path, ids), labels
