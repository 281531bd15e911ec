"""The PyAV reader on videos made here (H.264 and VP9, numbered frames) and on broken files."""

from __future__ import annotations

import io
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.datasets.helpers import frame_numbers, make_video, make_vpx_webm, numbered_frames
from vov3d.datasets import decoder, pts_window
from vov3d.datasets.decoder import PtsWindow, PyAVVideo, VideoDecodeError

GENERATED = [
    # suffix, (height, width), fps, frames, keyframe interval
    (".mp4", (48, 64), 30, 90, 12),
    (".mp4", (72, 96), 25, 41, None),
    (".mp4", (36, 64), 30000 / 1001, 70, 15),
    (".webm", (48, 64), 30, 60, 10),
    (".webm", (64, 48), 12, 30, None),
]


@pytest.fixture(scope="module", params=GENERATED, ids=lambda p: f"{p[0][1:]}-{p[1][0]}x{p[1][1]}-{p[2]:.2f}fps-{p[3]}")
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, tuple]:
    suffix, size, fps, count, gop = request.param
    path = tmp_path_factory.mktemp("videos") / f"v{suffix}"
    return make_video(path, count, fps=fps, size=size, gop_size=gop), request.param


def test_metadata(generated: tuple[str, tuple]) -> None:
    path, (_, size, fps, count, _) = generated
    with PyAVVideo(path) as video:
        assert video.num_frames == count
        assert video.fps == pytest.approx(fps, rel=1e-3)
        assert video.size == size


@pytest.mark.parametrize("seed", range(4))
def test_requested_frames_come_out(generated: tuple[str, tuple], seed: int) -> None:
    path, (_, size, _, count, _) = generated
    rng = np.random.default_rng(seed)
    cases = [[0], [count - 1], sorted(rng.choice(count, 6, replace=False)), rng.integers(0, count, 8)]
    for indices in cases:  # sorted, unsorted, with repeats
        with PyAVVideo(path) as video:
            frames = video.get_frames(indices)
        assert frames.shape == (len(indices), *size, 3) and frames.dtype.is_floating_point is False
        assert frame_numbers(frames) == list(indices)


def test_a_late_clip_decodes_from_the_keyframe_before_it(tmp_path: Path) -> None:
    path = make_video(tmp_path / "long.mp4", 240, gop_size=24)
    with PyAVVideo(path) as video:
        frames = video.get_frames([200, 210, 220])
        assert frame_numbers(frames) == [200, 210, 220]
        assert video.decoded_frames <= 24 + 24  # from the keyframe at 192 (or 168), not from 0
    with PyAVVideo(path) as video:  # a second read on one open file rewinds correctly
        assert frame_numbers(video.get_frames([230])) == [230]
        assert frame_numbers(video.get_frames([3, 5])) == [3, 5]


class _Pipe(io.RawIOBase):
    """A write-only, unseekable file: what a browser's recorder or ``ffmpeg ... -f webm -`` writes to."""

    def __init__(self, file: io.BufferedWriter) -> None:
        self.file = file

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        return self.file.write(data)


def test_a_webm_without_duration_counts_its_frames_by_decoding(tmp_path: Path) -> None:
    """Matroska written to a pipe has no duration, frame count or cues: the original decodes the
    whole video and samples from the decoded frame count; so do we (it used to be refused)."""
    path = tmp_path / "recorded.webm"
    with open(path, "wb") as raw:
        out = av.open(_Pipe(raw), "w", format="webm")
        stream = out.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for image in numbered_frames(45, 48, 64):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
        out.close()
    with av.open(str(path)) as container:  # the file really lacks all three
        assert container.duration is None and container.streams.video[0].frames == 0
    with PyAVVideo(str(path)) as video:
        assert video.num_frames == 45
        assert frame_numbers(video.get_frames([0, 17, 44])) == [0, 17, 44]


@pytest.mark.parametrize(
    "mislabel", ["", "cues", "blocks"], ids=["cues-at-keyframes", "cues-at-every-frame", "all-flagged"]
)
@pytest.mark.parametrize("codec", ["vp8", "vp9"])
def test_webm_clips_at_every_position_after_long_keyframe_intervals(tmp_path: Path, codec: str, mislabel: str) -> None:
    """Seeks that land on inter frames (cues at every frame) must not reach the decoder, nor make a
    good file look broken; with true keyframe flags the reader still decodes from a near keyframe."""
    count, gop = 90, 40
    path = make_vpx_webm(tmp_path / f"{codec}.webm", codec, count, fps=15, gop_size=gop, mislabel=mislabel)
    for first in range(count - 6):
        indices = [first, first + 2, first + 4, first + 6]  # up to the last frame
        with PyAVVideo(path) as video:
            assert video.num_frames == count
            assert frame_numbers(video.get_frames(indices)) == indices, (first, mislabel)
            if mislabel != "blocks":  # from the last keyframe before the seek target, 4 frames early,
                keyframe = max(first - 5, 0) // gop * gop  # plus a keyframe per seek that landed past it
                extra = 5 if mislabel else 1
                assert video.decoded_frames <= indices[-1] - keyframe + 1 + extra, first


def test_unneeded_unreferenced_frames_are_not_decoded(tmp_path: Path) -> None:
    """x264 makes many frames B-frames that nothing refers to: a sparse clip skips them."""
    path = make_video(tmp_path / "v.mp4", 120, gop_size=60)
    wanted = list(range(62, 118, 5))
    with PyAVVideo(path) as video, PyAVVideo(path) as every:
        every._can_skip = False
        assert frame_numbers(video.get_frames(wanted)) == frame_numbers(every.get_frames(wanted)) == wanted
        assert video.decoded_frames < every.decoded_frames


def gap_video(path: Path) -> str:
    """40 numbered frames at 30 fps, with frames 12-27 never shown (their time shows frame 11)."""
    frames = numbered_frames(40, 48, 64)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 30)
        for i in [i for i in range(40) if not 12 <= i < 28]:
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


def test_frames_across_a_timestamp_gap_are_those_of_a_full_decode(tmp_path: Path) -> None:
    """Across a gap the frame on screen lies further back than usual (here frame 11)."""
    path = gap_video(tmp_path / "gaps.mp4")
    with PyAVVideo(path) as video, PyAVVideo(path) as every:
        every._can_skip = False
        for first in range(0, 13):  # the header says 24 frames at 18 fps (40 frame times, 24 shown)
            indices = [first, first + 5, first + 10]
            assert frame_numbers(video.get_frames(indices)) == frame_numbers(every.get_frames(indices))


def test_a_dropped_frame_that_was_needed_makes_the_reader_decode_every_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net: let the decoder drop any unreferenced frame, needed or not (no frame is
    kept near the needed times); a needed one is missed, noticed, and decoded in a second pass."""
    monkeypatch.setattr(decoder, "_KEEP_BEFORE_FRAMES", -0.5)
    passes: list[bool] = []
    decode = PyAVVideo._decode
    monkeypatch.setattr(PyAVVideo, "_decode", lambda self, t, skip: passes.append(skip) or decode(self, t, skip))
    path = make_video(tmp_path / "v.mp4", 60, gop_size=30)
    with PyAVVideo(path) as video:
        assert frame_numbers(video.get_frames(list(range(31, 60)))) == list(range(31, 60))
    assert passes == [True, False]


def frame_window(video: PyAVVideo, start: float, end: float, positions: list[int]) -> PtsWindow:
    """The window from frame time ``start`` to ``end`` (frame units), as the Kinetics dataset makes it."""
    ticks = video.pts_per_frame
    return PtsWindow(int(start * ticks), int(end * ticks), np.array(positions))


def test_packets_carry_the_pts_of_the_decoded_frames(tmp_path: Path) -> None:
    """What listing a window from packets relies on: x264's B-frames come in another order than
    they are shown, and each packet's pts is the pts of one decoded frame."""
    path = make_video(tmp_path / "v.mp4", 90, gop_size=30)
    with av.open(path) as container:
        stream = container.streams.video[0]
        packets = [p.pts for p in container.demux(stream) if p.pts is not None]
    with av.open(path) as container:
        shown = [frame.pts for frame in container.decode(video=0)]
    assert packets != sorted(packets) and shown == sorted(shown)  # reordered: B-frames
    assert sorted(packets) == shown


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_window_frames_are_those_shown_in_it_at_list_positions(tmp_path: Path, suffix: str) -> None:
    path = make_video(tmp_path / f"v{suffix}", 120, gop_size=30)
    with PyAVVideo(path) as video:
        if video.pts_per_frame is None:  # WebM: no duration, the window is the whole video
            window = PtsWindow(None, None, np.array([0, 7, 7, 119, 500]))
            expected = [0, 7, 7, 119, 119]
        else:  # frames 41..77 lie in [40.5, 77.9], then frame 78; position 100 is past the list's end
            window = frame_window(video, 40.5, 77.9, [0, 3, 3, 36, 100])
            expected = [41, 44, 44, 77, 78]
        assert frame_numbers(video.get_window(window)) == expected


def test_window_skips_unpicked_unreferenced_frames(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", 120, gop_size=60)
    window = [62.2, 117.3, list(range(0, 56, 5))]
    with PyAVVideo(path) as video, PyAVVideo(path) as every:
        every._can_skip = False
        ours, full = video.get_window(frame_window(video, *window)), every.get_window(frame_window(every, *window))
        # position 55 takes frame 118, the one after the window
        assert frame_numbers(ours) == frame_numbers(full) == list(range(63, 114, 5)) + [118]
        assert video.decoded_frames < every.decoded_frames


def test_the_frame_after_a_window_is_listed_from_packets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The list ends with the next frame after the window. Past the window's end, B-frames come
    after the later frame they refer to, so packets are read until no earlier one can follow:
    every window here is listed from packets, none needs a decode to list it."""
    monkeypatch.setattr(pts_window.PtsWindowReader, "_window_timestamps", lambda self, w: pytest.fail("decoded"))
    path = make_video(tmp_path / "v.mp4", 60, gop_size=30)
    with PyAVVideo(path) as video:
        for end in range(8, 59):  # frames end - 8 .. end, then end + 1 at position 9
            assert frame_numbers(video.get_window(frame_window(video, end - 8, end + 0.5, [0, 9]))) == [
                end - 8,
                end + 1,
            ]


def test_a_dropped_pick_makes_the_window_decode_every_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net: should the decoder drop a picked frame, a second pass decodes them all."""
    decoded = PyAVVideo._decoded
    passes: list[bool] = []

    def losing_one(self, packets, skippable=None, from_keyframe=False):
        passes.append(skippable is not None)
        frames = decoded(self, packets, skippable, from_keyframe)
        return (item for item in frames if skippable is None or item[0] != 70 * 512)  # frame 70

    monkeypatch.setattr(PyAVVideo, "_decoded", losing_one)
    path = make_video(tmp_path / "v.mp4", 120, gop_size=60)
    with PyAVVideo(path) as video:
        assert video.pts_per_frame == 512
        assert frame_numbers(video.get_window(frame_window(video, 60, 80, [0, 10, 20]))) == [60, 70, 80]
    assert passes[0] and not passes[-1]


def test_a_window_listed_wrongly_by_its_packets_is_decoded_to_list_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packets whose pts do not name the decoded frames (here: one frame's pts changed on the way)
    make the reader list the window by decoding it."""
    decoded = PyAVVideo._decoded
    listed: list[int] = []

    def retimed(self, packets, skippable=None, from_keyframe=False):
        return ((ts + 1 if ts == 70 * 512 else ts, frame) for ts, frame in decoded(self, packets, skippable))

    timestamps = pts_window.PtsWindowReader._window_timestamps
    monkeypatch.setattr(PyAVVideo, "_decoded", retimed)
    monkeypatch.setattr(
        pts_window.PtsWindowReader, "_window_timestamps", lambda self, w: listed.append(1) or timestamps(self, w)
    )
    path = make_video(tmp_path / "v.mp4", 120, gop_size=60)
    with PyAVVideo(path) as video:
        assert frame_numbers(video.get_window(frame_window(video, 60, 80, [0, 10, 20]))) == [60, 70, 80]
    assert listed == [1]


def test_a_truncated_video_without_duration_is_broken_for_every_window(tmp_path: Path) -> None:
    data = Path(make_video(tmp_path / "whole.webm", 60, gop_size=10)).read_bytes()
    (tmp_path / "cut.webm").write_bytes(data[: len(data) // 3])
    with PyAVVideo(str(tmp_path / "cut.webm")) as video:
        assert video.pts_per_frame is None and video.num_frames == 60  # from the container's duration
        with pytest.raises(VideoDecodeError, match="header promises 60 frames .* truncated or damaged"):
            video.get_window(PtsWindow(None, None, np.array([0])))


def test_multi_thread_decoding_gives_the_same_frames(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", 60, gop_size=10)
    with PyAVVideo(path) as one, PyAVVideo(path, multi_thread=True) as many:
        assert np.array_equal(one.get_frames([5, 33, 59]), many.get_frames([5, 33, 59]))
        window = frame_window(one, 20.5, 50, [0, 9, 29, 40])
        assert np.array_equal(one.get_window(window), many.get_window(window))


def test_a_reader_alive_at_fork_is_freed_in_the_child(tmp_path: Path) -> None:
    """Loader workers are forked while readers may still be referenced (e.g. by a traceback)."""
    video = PyAVVideo(make_video(tmp_path / "v.mp4", 10))
    video.get_frames([0, 9])
    pid = os.fork()
    if pid == 0:  # the child frees the inherited reader, as a worker's garbage collector would
        del video
        os._exit(0)
    deadline, status = time.monotonic() + 30, (0, 0)
    while status == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
        status = os.waitpid(pid, os.WNOHANG)
    if status == (0, 0):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert status != (0, 0), "freeing a PyAVVideo in a forked child hung"
    video.close()


def _write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _truncate(path: str, fraction: float) -> str:
    data = Path(path).read_bytes()
    out = Path(path).with_name("truncated" + Path(path).suffix)
    out.write_bytes(data[: int(len(data) * fraction)])
    return str(out)


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda d: str(d / "missing.mp4"), "file not found"),
        (lambda d: _write(d / "zero.mp4", b""), r"empty \(0 bytes\)"),
        (lambda d: _write(d / "text.mp4", b"not a video\n"), "cannot be opened as a video"),
        (lambda d: _write_audio_only(d / "audio.wav") or str(d / "audio.wav"), "has no video stream"),
        (lambda d: _truncate(make_video(d / "v.mp4", 60), 0.6), "truncated"),  # its index is at the end
        (lambda d: _truncate(make_video(d / "v.webm", 60, gop_size=10), 0.5), "truncated or damaged"),
        (lambda d: _truncate(make_vpx_webm(d / "v.webm", "vp8", 60, 15, 20, "cues"), 0.5), "truncated or damaged"),
        (lambda d: str(d), "is a folder"),
    ],
    ids=[
        "missing",
        "zero-byte",
        "text",
        "audio-only",
        "truncated-mp4",
        "truncated-webm",
        "truncated-vp8-cues",
        "folder",
    ],
)
def test_broken_files_raise_naming_the_file(tmp_path: Path, make, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(VideoDecodeError, match=reason) as error:
        with PyAVVideo(path) as video:
            video.get_frames([0, video.num_frames - 1])
    assert str(error.value).startswith(f"{path}: ")
