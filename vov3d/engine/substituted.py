"""The training clips of an epoch that stood in for unreadable videos: counted over loader workers
and processes, judged against DATA.MAX_BAD_VIDEO_FRACTION, and named in a warning or an error."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Optional

import torch

from vov3d.datasets import TooManyBrokenVideosError
from vov3d.datasets.clip_dataset import check_substituted
from vov3d.datasets.readable import ANNOTATED_ADVICE
from vov3d.utils.distributed import all_gather_tensors, is_main_process
from vov3d.utils.text import first_of

logger = logging.getLogger(__name__)

# Unreadable training files named in a log line or error; tools/scan_dataset.py lists them all.
MAX_LISTED = 10


class SubstitutedClips:
    """Counts, for one epoch, the clips that a dataset took from another video because theirs was
    unreadable (``meta["substituted"]``: the unreadable video's index, -1 for a clip of its own).

    ``local`` reads a batch of this process; ``add`` takes the counts summed over all processes,
    so every process decides alike and all stop together past ``max_fraction``. Naming the files
    gathers them from every process: ``error`` and ``warn`` are collective calls.
    """

    def __init__(
        self, max_fraction: float, paths: Optional[Sequence[str]] = None, advice: str = ANNOTATED_ADVICE
    ) -> None:
        self.max_fraction = max_fraction
        self.paths = paths
        self.advice = advice  # what to do about the files (``fix_advice``)
        self.clips = 0
        self.count = 0  # clips that stood in
        self._replaced: list[torch.Tensor] = []  # videos of this process's batches another clip stood in for

    def state_dict(self) -> dict[str, Any]:
        """The epoch's counts and the unreadable videos of every process so far, for a mid-epoch
        checkpoint (a collective call)."""
        return {"clips": self.clips, "count": self.count, "videos": self._videos()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.clips, self.count = int(state["clips"]), int(state["count"])
        self._replaced = [torch.as_tensor(state["videos"], dtype=torch.long)]

    def local(self, meta: dict[str, Any], batch_size: int, device: torch.device) -> torch.Tensor:
        """The substituted clips of this process's batch, as a float to sum over processes."""
        substituted = meta.get("substituted", torch.full((batch_size,), -1)).to(device)
        self._replaced.append(substituted[substituted >= 0])
        return (substituted >= 0).sum().float()

    def add(self, clips: float, substituted: float) -> None:
        """Add a batch's counts over all processes; raises TooManyBrokenVideosError once enough
        clips are seen to judge and the share is too high."""
        self.clips, self.count = self.clips + int(clips), self.count + int(substituted)
        if substituted and check_substituted(self.count, self.clips, self.max_fraction, False):
            raise self.error()

    def finish(self) -> None:
        """At the end of the epoch: raises TooManyBrokenVideosError when the share is too high."""
        if check_substituted(self.count, self.clips, self.max_fraction, True):
            raise self.error()

    def _videos(self) -> list[int]:
        """The distinct unreadable videos of all processes' batches so far (a collective call)."""
        device = self._replaced[-1].device if self._replaced else torch.device("cpu")
        replaced = [videos.to(device) for videos in self._replaced]
        local = torch.unique(torch.cat(replaced)) if replaced else torch.zeros(0, dtype=torch.long, device=device)
        return torch.unique(all_gather_tensors(local)).tolist()

    def files(self) -> list[str]:
        """The distinct unreadable videos of all processes' batches so far (a collective call)."""
        return [self.paths[v] if self.paths else f"video {v}" for v in self._videos()]

    def error(self) -> TooManyBrokenVideosError:
        files = self.files()
        return TooManyBrokenVideosError(
            f"{self.count} of {self.clips} training clips stood in for unreadable videos ({len(files)} files: "
            f"{first_of(files, MAX_LISTED)}), more than DATA.MAX_BAD_VIDEO_FRACTION = {self.max_fraction}; "
            f"list every unreadable file with tools/scan_dataset.py, then {self.advice}"
        )

    def warn(self, epoch: int, max_epoch: int) -> None:
        """When any clip stood in this epoch, one warning from the main process naming the files."""
        if not self.count:
            return
        files = self.files()  # every process takes part in gathering the names
        if is_main_process():
            logger.warning(
                "epoch %d/%d: %d of %d training clips stood in for unreadable videos (%d files: %s); "
                "list every unreadable file with tools/scan_dataset.py",
                epoch + 1,
                max_epoch,
                self.count,
                self.clips,
                len(files),
                first_of(files, MAX_LISTED),
            )
