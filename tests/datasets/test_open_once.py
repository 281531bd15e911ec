"""A process keeps the last video it opened open while the next item is of the same video: the
test views of a video open and probe its file once and give the frames they gave when each view
opened the file anew; one source is open at a time; a failed read or another process opens anew."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import av
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from tests.datasets.helpers import make_video
from tests.helpers import small_cfg, write_kinetics_csvs
from vov3d.config import CfgNode
from vov3d.datasets import build_dataset
from vov3d.datasets.decoder import PyAVVideo, VideoDecodeError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("open_once")
    for i, count in enumerate((300, 150)):
        make_video(root / f"{i}.mp4", count, gop_size=15)
    write_kinetics_csvs(root, [("0.mp4", 0), ("1.mp4", 1)])
    return root


def views_cfg(root: Path) -> CfgNode:
    cfg = small_cfg(root, root)
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = 10, 3
    return cfg


def each_view_anew(cfg: CfgNode, items: range) -> list[torch.Tensor]:
    """Each item from a dataset of its own: the file opened for it alone, as before."""
    return [build_dataset(cfg, "test")[i][0] for i in items]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files PyAV opens from here on."""
    files: list[str] = []
    av_open = av.open

    def counted(file: object, *args: object, **kwargs: object) -> av.container.InputContainer:
        files.append(str(file))
        return av_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counted)
    return files


def test_the_10_x_3_views_of_a_video_open_it_once(root: Path, opened: list[str]) -> None:
    cfg = views_cfg(root)
    before = each_view_anew(cfg, range(60))
    del opened[:]
    ds = build_dataset(cfg, "test")
    items = [ds[i][0] for i in range(60)]
    assert opened == [ds.paths[0], ds.paths[1]]
    assert all(torch.equal(a, b) for a, b in zip(items, before))


def test_one_source_is_open_at_a_time(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another video closes the one kept open."""
    ds = build_dataset(views_cfg(root), "test")
    sources: list[PyAVVideo] = []
    closed: set[int] = set()
    open_video, close = ds.open_video, PyAVVideo.close
    monkeypatch.setattr(ds, "open_video", lambda video: sources.append(open_video(video)) or sources[-1])
    monkeypatch.setattr(PyAVVideo, "close", lambda self: closed.add(id(self)) or close(self))
    for i in (0, 5, 29, 30, 59, 0):
        ds[i]
        assert len([s for s in sources if id(s) not in closed]) == 1
    assert [s.path for s in sources] == [ds.paths[v] for v in (0, 1, 0)]


def test_a_failed_read_closes_the_source(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A view that cannot be read closes the video: the next view opens it anew."""
    cfg = views_cfg(root)
    ds = build_dataset(cfg, "test")
    opened: list[int] = []
    open_video, select_frames = ds.open_video, ds.select_frames

    def select_or_fail(source: PyAVVideo, view: int, rng: object) -> object:
        if view == 9:
            raise VideoDecodeError(f"{source.path}: damaged at view 9")
        return select_frames(source, view, rng)

    monkeypatch.setattr(ds, "open_video", lambda video: opened.append(video) or open_video(video))
    monkeypatch.setattr(ds, "select_frames", select_or_fail)
    ds[0]
    with pytest.raises(VideoDecodeError, match="damaged at view 9"):
        ds[27]
    assert torch.equal(ds[24][0], each_view_anew(cfg, [24])[0])
    assert opened == [0, 0]


def test_loader_workers_open_their_own(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset holding an open source still pickles, and forked workers open each video they
    read themselves (not the source of the process that forked them), reading what it reads."""
    cfg = views_cfg(root)
    ds = build_dataset(cfg, "test")
    first = ds[0][0]
    assert pickle.loads(pickle.dumps(ds))[1][0].shape == first.shape
    log, open_video = tmp_path / "opened.txt", ds.open_video

    def logged(video: int) -> PyAVVideo:
        with log.open("a") as file:
            file.write(f"{os.getpid()} {video}\n")
        return open_video(video)

    monkeypatch.setattr(ds, "open_video", logged)
    loaded = torch.cat([batch[0] for batch in DataLoader(ds, batch_size=6, num_workers=2)])
    assert torch.equal(ds[3][0], each_view_anew(cfg, [3])[0])  # the source kept here still reads right
    assert torch.equal(loaded, torch.stack(each_view_anew(cfg, range(60))))
    opens = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    workers = {pid for pid, _ in opens} - {os.getpid()}
    assert len(workers) == 2 and sorted(video for pid, video in opens if pid in workers) == [0, 0, 1, 1]


def test_a_multi_threaded_reader_is_closed_before_workers_fork(root: Path) -> None:
    """Freeing an inherited multi-threaded FFmpeg decoder in a forked worker waits forever on threads
    that stayed in the parent, so the dataset closes its open video before a fork: workers forked
    after this process read a view go on reading (the loader's timeout turns a hang into an error)."""
    cfg = views_cfg(root)
    cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE = True
    ds = build_dataset(cfg, "test")
    first = ds[0][0]
    assert ds._open is not None  # the video is held open here
    loader = DataLoader(Subset(ds, range(30, 36)), batch_size=3, num_workers=1, timeout=120)
    loaded = torch.cat([batch[0] for batch in loader])
    assert torch.equal(loaded, torch.stack(each_view_anew(views_cfg(root), range(30, 36))))
    assert ds._open is None and torch.equal(ds[0][0], first)  # closed at the fork, opened again
