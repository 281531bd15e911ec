"""The base of every dataset: splits and test views, the transform, and broken videos.

Items are ``(frames, label, index, meta)``: frames the uint8 T x H x W x 3 crop (``Normalize``
makes the network's input of a batch of them, on its device), the integer label, the
item index, and ``meta`` = {"video_index", "temporal_index", "spatial_index", "valid",
"substituted"} (python ints and a bool, so the default collate makes tensors of them). In the test
split item ``i`` is view ``i % num_views`` of video ``i // num_views``; train and val have one item
per video. A training item whose video cannot be read is a clip of a random other video, and its
"substituted" names the unreadable one (-1 otherwise): the training loop sums these over loader
workers and processes, which each hold their own copy of the dataset.

The training loader indexes the train split with ``TrainKey``s (see sampler.py): every random draw
of such an item comes from generators seeded from (seed, epoch, index), so the item is the same in
any process or loader worker. A plain index draws from the dataset's own stream (``rng``,
``reseed``), as tools and tests that index a dataset directly do. A key with a ``ClipSpec``
(multigrid training) makes its item in that shape: frames, crop, short side and frame stride.

With AUG.NUM_SAMPLE N > 1 a training item holds N clips of its video, stacked in a new first
dimension (``load_clips``): as PySlowFast, N scales, crops, flips and RandAugment draws of one
decoded clip, or with AUG.INDEPENDENT_POSITIONS N clips at positions of their own, decoded
together where they overlap.

Each process (loader worker) keeps the last video it opened open while the next item is of the same
video (the test views of a video are consecutive items), so a video is opened and probed once. It
closes it before forking: freeing a multi-threaded FFmpeg decoder in a child, whose threads stayed
in the parent, waits forever.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
import weakref
from collections.abc import Iterator
from typing import Any, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from vov3d.config import CfgNode, cfg_error
from vov3d.utils.distributed import get_rank

from .decoder import VIDEO_BACKENDS, VideoDecodeError, open_video_file, worker_message
from .multi_clip import Selection, Source, read_clips, read_frames
from .rand_augment import ClipRandAugment
from .sampler import ClipSpec, TrainKey
from .transforms import ClipTransform

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# Training checks the substituted fraction only after this many clips of an epoch (and at its end),
# so that a few broken files early on do not stop a run whose overall fraction is small.
MIN_CLIPS_CHECKED = 100

Item = tuple[torch.Tensor, int, int, dict[str, Any]]
_backend_alias_logged = False


class TooManyBrokenVideosError(RuntimeError):
    """Training met more unreadable videos than DATA.MAX_BAD_VIDEO_FRACTION allows."""

    def __init__(self, message: str) -> None:
        super().__init__(worker_message(type(self), message))


def check_substituted(substituted: int, clips: int, max_fraction: float, epoch_done: bool) -> bool:
    """Whether ``substituted`` of ``clips`` training clips (all processes) is more than
    ``max_fraction``, judged once MIN_CLIPS_CHECKED clips were loaded or the epoch is done."""
    return (clips >= MIN_CLIPS_CHECKED or epoch_done) and substituted > max_fraction * clips


def decoding_backend(cfg: CfgNode) -> str:
    """DATA.DECODING_BACKEND, with PySlowFast's "torchvision" read as "pyav"."""
    global _backend_alias_logged
    name = cfg.DATA.DECODING_BACKEND.lower()
    if name == "torchvision":
        if not _backend_alias_logged:
            logger.info("DATA.DECODING_BACKEND torchvision is read as pyav (torchvision no longer decodes video)")
            _backend_alias_logged = True
        return "pyav"
    if name not in VIDEO_BACKENDS:
        raise cfg_error(
            cfg, "DATA.DECODING_BACKEND", f"not an available video decoder; available: {', '.join(VIDEO_BACKENDS)}"
        )
    return name


class ClipDataset(Dataset):
    """Subclasses read their annotations in ``split_videos``, add their arguments in
    ``view_arguments`` and define ``open_video`` (a file or a frame folder) and ``sample_frames``
    (which frame indices make a clip) or ``select_frames`` (which frames, by index or pts window).
    Video files are read with ``video_backend`` (DATA.DECODING_BACKEND), multi-threaded with
    ``multi_thread_decode``. A training item holds ``num_samples`` clips of its video
    (AUG.NUM_SAMPLE), of one temporal position or, with ``independent_positions``, of one each."""

    reads_frame_folders = False  # whether a folder in ``paths`` is one video's frames

    def __init__(
        self,
        paths: list[str],
        labels: list[int],
        split: str,
        transform: ClipTransform,
        num_frames: int,
        num_temporal_views: int = 1,
        num_spatial_crops: int = 1,
        skip_broken: bool = False,
        seed: int = 0,
        video_backend: str = "pyav",
        multi_thread_decode: bool = False,
        num_samples: int = 1,
        independent_positions: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        if num_samples < 1:
            raise ValueError(f"num_samples (clips per training item) must be 1 or more, got {num_samples}")
        self.paths, self.labels = list(paths), [int(label) for label in labels]
        self.split = split
        self.transform = transform
        self.num_frames = num_frames
        self.num_temporal_views = num_temporal_views if split == "test" else 1
        self.num_spatial_crops = num_spatial_crops if split == "test" else 1
        self.skip_broken = skip_broken
        self.rng = np.random.default_rng(seed)
        self.video_backend = video_backend
        self.multi_thread_decode = multi_thread_decode
        self.num_samples = num_samples if split == "train" else 1
        self.independent_positions = independent_positions
        self._failed: dict[int, str] = {}  # video index -> reason, in this process
        self._last_clip: Optional[tuple[tuple[int, int], torch.Tensor]] = None  # see load_clip
        self._open: Optional[tuple[int, Source]] = None  # (video index, source): see _source

    @classmethod
    def from_cfg(cls, cfg: CfgNode, split: str, **overrides: Any) -> dict[str, Any]:
        """The constructor arguments of ``split``: how its clips are made (``view_arguments``) and
        which videos it holds (``split_videos``, from the annotation files), each replaced by an
        override of the same name. Overriding ``paths`` and ``labels`` gives the split's views of
        other files without reading any annotation: predict asks for the test's views this way."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        known = cls.argument_names()
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(
                f"{cls.__name__}.from_cfg: unknown argument {', '.join(map(repr, unknown))}; "
                f"the constructor takes {', '.join(sorted(known))}"
            )
        given = [name for name in ("paths", "labels") if name in overrides]
        if len(given) == 1:
            raise TypeError(f"{cls.__name__}.from_cfg: override paths and labels together, got only {given[0]}")
        kwargs = cls.view_arguments(cfg, split)
        if "paths" not in overrides:
            kwargs.update(cls.split_videos(cfg, split))
        return {**kwargs, **overrides}

    @classmethod
    def argument_names(cls) -> frozenset[str]:
        """The constructor arguments from_cfg may override: those of every ``__init__`` from this
        class up to ClipDataset (subclasses pass the rest on as ``**kwargs``), except ``split``."""
        names = set()
        for klass in cls.__mro__[: cls.__mro__.index(ClipDataset) + 1]:
            if "__init__" in vars(klass):
                params = inspect.signature(klass.__init__).parameters.values()
                names.update(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        return frozenset(names - {"self", "split"})

    @classmethod
    def split_videos(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        """``paths``, ``labels`` and any other per-video argument of ``split``, read from the
        annotation files named by the cfg."""
        raise NotImplementedError

    @classmethod
    def view_arguments(cls, cfg: CfgNode, split: str) -> dict[str, Any]:
        """How ``split`` makes clips of any video (transform, frames, views, decoding): the
        arguments shared by all datasets; subclasses add their sampling."""
        data = cfg.DATA
        low, high = data.TRAIN_JITTER_SCALES
        if data.TRAIN_CROP_SIZE > low:
            raise cfg_error(cfg, "DATA.TRAIN_CROP_SIZE", f"must not exceed DATA.TRAIN_JITTER_SCALES[0] = {low}")
        crops = cfg.TEST.NUM_SPATIAL_CROPS if split == "test" else 1
        if split == "train":
            transform = ClipTransform(
                data.TRAIN_CROP_SIZE,
                (low, high),
                True,
                flip=data.RANDOM_FLIP,
                inv_uniform=data.INV_UNIFORM_SAMPLE,
                augment=ClipRandAugment.from_cfg(cfg) if cfg.AUG.ENABLE else None,
            )
        else:  # 3 crops: short side = crop size; 1 crop (and val): short side = jitter min
            short = data.TEST_CROP_SIZE if crops == 3 else low
            if data.TEST_CROP_SIZE > short:
                raise cfg_error(cfg, "DATA.TEST_CROP_SIZE", f"must not exceed the short side {short} of 1-crop views")
            transform = ClipTransform(data.TEST_CROP_SIZE, (short, short), False, num_crops=crops)
        return dict(
            split=split,
            transform=transform,
            num_frames=data.NUM_FRAMES,
            num_temporal_views=cfg.TEST.NUM_ENSEMBLE_VIEWS,
            num_spatial_crops=cfg.TEST.NUM_SPATIAL_CROPS,
            skip_broken=cfg.TEST.SKIP_BROKEN_VIDEOS,
            seed=cfg.RNG_SEED + get_rank(),
            video_backend=decoding_backend(cfg),
            multi_thread_decode=cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE,
            num_samples=cfg.AUG.NUM_SAMPLE if split == "train" else 1,
            independent_positions=cfg.AUG.INDEPENDENT_POSITIONS,
        )

    def open_video(self, video_index: int) -> Source:
        """The video file or frame folder of ``video_index``; raises VideoDecodeError."""
        return open_video_file(self.paths[video_index], self.video_backend, self.multi_thread_decode)

    def sample_frames(
        self, video_frames: int, video_fps: Optional[float], view: Optional[int], rng: np.random.Generator
    ) -> np.ndarray:
        """Frame indices of a clip: random for ``view=None``, else temporal view ``view``."""
        raise NotImplementedError

    def select_frames(self, source: Source, view: Optional[int], rng: np.random.Generator) -> Selection:
        """The frames of a clip of ``source`` (see ``sample_frames``); datasets that pick frames by
        timestamp return a PtsWindow instead of indices."""
        return self.sample_frames(source.num_frames, source.fps, view, rng)

    @property
    def num_videos(self) -> int:
        return len(self.paths)

    @property
    def num_views(self) -> int:
        return self.num_temporal_views * self.num_spatial_crops

    def __len__(self) -> int:
        return self.num_videos * self.num_views

    def reseed(self, seed: int) -> None:
        """Restart the stream that plain training indices draw from (``TrainKey``s use their own)."""
        self.rng = np.random.default_rng(seed)

    def load_clip(self, video_index: int, temporal_index: int, spatial_index: int) -> torch.Tensor:
        """Decode and transform test view (``temporal_index``, ``spatial_index``) of a video. The
        spatial crops of a test clip, consecutive items, share one decode: the last clip's frames
        are kept."""
        key = (video_index, temporal_index)
        if self._last_clip is not None and self._last_clip[0] == key:
            frames = self._last_clip[1]
        else:
            with self._source(video_index) as video:
                frames = self.read_view(video, temporal_index)
            if self.num_spatial_crops > 1:
                self._last_clip = (key, frames)
        return self.transform(frames, spatial_index, self.rng)

    def read_view(self, source: Source, temporal_index: int) -> torch.Tensor:
        """Test view ``temporal_index`` of an open ``source``, decoded, untransformed (the demo's windows)."""
        return read_frames(source, self.select_frames(source, temporal_index, self.rng))

    def window_frames(self, fps: float) -> Optional[int]:
        """Frames one clip spans at ``fps`` (Kinetics); None where a clip spans a whole video (SS)."""
        return None

    def load_clips(
        self, video_index: int, rng: np.random.Generator, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """``num_samples`` random training clips of a video, from one open and one decode: the
        clip's position is drawn from ``rng`` (with ``independent_positions`` the positions of
        all, one after another, read together by ``read_clips``), then each clip's scale, crop and
        flip from ``rng`` and RandAugment's ops from ``generator`` (None: torch's), clip after clip.
        One clip, or the N clips stacked (N x T x H x W x 3)."""
        positions = self.num_samples if self.independent_positions else 1
        with self._source(video_index) as video:
            decoded = read_clips(video, [self.select_frames(video, None, rng) for _ in range(positions)])
        clips = [self.transform(decoded[k % positions], 0, rng, generator) for k in range(self.num_samples)]
        return clips[0] if self.num_samples == 1 else torch.stack(clips)

    @contextlib.contextmanager
    def _source(self, video_index: int) -> Iterator[Source]:
        """The open video ``video_index``, kept open for the next item of the same video and closed
        when another video comes (one open source per process), when reading it fails, or before
        this process forks (``_close_before_fork``)."""
        if self._open is None or self._open[0] != video_index:
            self._close_source()
            self._open = (video_index, self.open_video(video_index))
            _HOLDING.add(self)
        try:
            yield self._open[1]
        except BaseException:
            self._close_source()
            raise

    def _close_source(self) -> None:
        opened, self._open = self._open, None
        if opened is not None:
            opened[1].__exit__(None, None, None)

    def __getstate__(self) -> dict[str, Any]:
        """The dataset without its open source, which cannot be pickled (spawned loader workers)."""
        return {**self.__dict__, "_open": None}

    def __getitem__(self, index: Union[int, TrainKey]) -> Item:
        """Item ``index``; a ``TrainKey`` (train split only) draws from generators of its own."""
        key = index if isinstance(index, TrainKey) else None
        if key is not None:
            if self.split != "train":
                raise ValueError(f"{key} indexes the train split, not the {self.split} split")
            index = key.index
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} items")
        if key is not None:
            rng, generator = key.generators()
            with self._shaped(key.spec, rng):
                return self._train_item(index, rng, generator)
        if self.split == "train":
            return self._train_item(index, self.rng, None)
        video, view = divmod(index, self.num_views)
        temporal, spatial = divmod(view, self.num_spatial_crops)
        if self.split == "val":  # one view per video: the middle clip, centre crop
            temporal, spatial = 0, 0
        valid = True
        try:
            frames = self.load_clip(video, temporal, spatial)
        except VideoDecodeError as e:
            if not self.skip_broken:
                raise VideoDecodeError(
                    f"{e}; set TEST.SKIP_BROKEN_VIDEOS True to leave unreadable videos out of validation and "
                    "testing, or list them all with tools/scan_dataset.py"
                ) from None
            if video not in self._failed:
                self._failed[video] = str(e)
                logger.warning("skipping %s video (TEST.SKIP_BROKEN_VIDEOS): %s", self.split, e)
            crop = self.transform.crop_size
            frames, valid = torch.zeros(self.num_frames, crop, crop, 3, dtype=torch.uint8), False
        meta = dict(video_index=video, temporal_index=temporal, spatial_index=spatial, valid=valid, substituted=-1)
        return frames, self.labels[video], index, meta

    def spec_attributes(self, spec: ClipSpec, rng: np.random.Generator) -> dict[str, Any]:
        """The attributes that make a training clip of ``spec`` (multigrid): frames, and the
        transform with the spec's crop and short-side range; datasets with a frame stride add it,
        drawn from ``rng``."""
        transform = dataclasses.replace(self.transform, crop_size=spec.crop_size, scales=spec.jitter_scales)
        return {"num_frames": spec.num_frames, "transform": transform}

    @contextlib.contextmanager
    def _shaped(self, spec: Optional[ClipSpec], rng: np.random.Generator) -> Iterator[None]:
        """The dataset making clips of ``spec`` (None: its own) inside: a worker loads one item
        at a time, so its copy's attributes can stand for the item's shape."""
        if spec is None:
            yield
            return
        changed = self.spec_attributes(spec, rng)
        saved = {name: getattr(self, name) for name in changed}
        self.__dict__.update(changed)
        try:
            yield
        finally:
            self.__dict__.update(saved)

    def _train_item(self, index: int, rng: np.random.Generator, generator: Optional[torch.Generator]) -> Item:
        """Load ``index`` with draws from ``rng`` and ``generator`` (see ``load_clips``); if it
        cannot be read, warn (once per file in this process) and load a random other video, drawn
        from ``rng``, recording ``index`` in the item's "substituted"."""
        video = index
        while True:
            try:
                frames = self.load_clips(video, rng, generator)
            except VideoDecodeError as e:
                self._record_failure(video, e)
                video = int(rng.integers(self.num_videos))
                continue
            substituted = -1 if video == index else index
            meta = dict(video_index=video, temporal_index=-1, spatial_index=-1, valid=True, substituted=substituted)
            return frames, self.labels[video], index, meta

    def _record_failure(self, video: int, error: VideoDecodeError) -> None:
        if video not in self._failed:
            self._failed[video] = str(error)
            logger.warning("unreadable training video, using a random other one: %s", error)
        if len(self._failed) == self.num_videos:
            raise TooManyBrokenVideosError(
                f"none of the {self.num_videos} videos of the {self.split} split could be read; "
                f"the last: {error}. Check DATA.PATH_PREFIX and DATA.PATH_TO_DATA_DIR"
            )


_HOLDING: weakref.WeakSet[ClipDataset] = weakref.WeakSet()  # datasets that opened a video in this process


def _close_before_fork() -> None:
    for dataset in list(_HOLDING):
        dataset._close_source()


os.register_at_fork(before=_close_before_fork)
