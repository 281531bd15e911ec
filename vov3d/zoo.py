"""Published checkpoints by name (``vov3d_L_k400``) or URL, downloaded once into a local cache.

The cache is ``$VOV3D_CACHE`` if set, else ``$TORCH_HOME/vov3d/checkpoints`` (``TORCH_HOME`` as
torch.hub reads it: default ``$XDG_CACHE_HOME/torch``, i.e. ``~/.cache/torch``). A download goes
to a temporary file beside its final name and is renamed only once it is complete and matches
the expected length (and size / sha256 where known), so the cache never holds a partial file.

The weights are their authors' (the VoV3D release: CC-BY-NC 4.0; PySlowFast's X3D files: its
own terms), not covered by vov3d's licence.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import logging
import os
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO, Optional

from tqdm import tqdm

from vov3d.checkpoint import CheckpointError
from vov3d.utils.atomic import atomic_path

logger = logging.getLogger(__name__)

CACHE_ENV = "VOV3D_CACHE"
TIMEOUT_S = 60
_CHUNK = 1 << 20
_ZOO_NAME = re.compile(r"[A-Za-z0-9_\-]+")  # what a name looks like, as opposed to a file path


class CheckpointDownloadError(CheckpointError):
    """A checkpoint could not be downloaded or did not arrive whole; says where to put it by hand."""


@dataclass(frozen=True)
class ZooEntry:
    """A published checkpoint: where it is, the config it was trained with, and what is known
    about the file (``size`` in bytes, ``sha256``; None until someone measures them)."""

    url: str
    config: str
    licence: str
    filename: Optional[str] = None  # cache file name when the URL has none
    size: Optional[int] = None
    sha256: Optional[str] = None

    @property
    def cache_name(self) -> str:
        return self.filename or url_filename(self.url)


VOV3D_RELEASE = "CC-BY-NC-4.0 (VoV3D release)"
PYSLOWFAST = "PySlowFast model zoo terms"
_DROPBOX = "https://dl.dropbox.com/s/"
_ETRI = "https://etri.gov-dooray.com/share/drive-files/kdhawuidbrbd."


def _release(url: str, config: str, filename: Optional[str] = None) -> ZooEntry:
    return ZooEntry(url, f"configs/{config}", VOV3D_RELEASE, filename)


ZOO: dict[str, ZooEntry] = {
    # Kinetics-400
    "x3d_M_k400": ZooEntry(
        "https://dl.fbaipublicfiles.com/pyslowfast/x3d_models/x3d_m.pyth", "configs/Kinetics/x3d/X3D_M.yaml", PYSLOWFAST
    ),
    "x3d_L_k400": ZooEntry(
        "https://dl.fbaipublicfiles.com/pyslowfast/x3d_models/x3d_l.pyth", "configs/Kinetics/x3d/X3D_L.yaml", PYSLOWFAST
    ),
    "x3d_M_256e_k400": _release(_DROPBOX + "s87lnn7ch4a6e47/x3d_M_256e_k400.pth", "Kinetics/x3d/X3D_M_256e.yaml"),
    "vov3d_M_k400": _release(_DROPBOX + "hpk172nbvm3w5p1/vov3d_M_k400.pth", "Kinetics/vov3d/vov3d_M.yaml"),
    "vov3d_L_k400": _release(_DROPBOX + "lzmq8d4dqyj8fj6/vov3d_L_k400.pth", "Kinetics/vov3d/vov3d_L.yaml"),
    # Something-Something V1
    "x3d_M_ssv1": _release(_DROPBOX + "lb9uvj4tl19xzmn/x3d_M_ssv1.pth", "SSv1/x3d/x3d_M.yaml"),
    "x3d_L_ssv1": _release(_DROPBOX + "yixwwfv6mv2bpnd/x3d_L_ssv1.pth", "SSv1/x3d/x3d_L.yaml"),
    "vov3d_M_f16_ssv1": _release(_DROPBOX + "usbcudmhpknqvtd/vov3d_M_f16_ssv1.pth", "SSv1/vov3d/vov3d_M_F16.yaml"),
    "vov3d_M_f32_ssv1": _release(_DROPBOX + "fvet69zyeswe25v/vov3d_M_f32_ssv1.pth", "SSv1/vov3d/vov3d_M_F32.yaml"),
    "vov3d_L_f16_ssv1": _release(_DROPBOX + "bdjam5tyaedkczl/vov3d_L_f16_ssv1.pth", "SSv1/vov3d/vov3d_L_F16.yaml"),
    "vov3d_L_f32_ssv1": _release(_DROPBOX + "g6lc5sj8h7f2r5v/vov3d_L_f32_ssv1.pth", "SSv1/vov3d/vov3d_L_F32.yaml"),
    "vov3d_M_f32_k400_ssv1": _release(
        _ETRI + "C59lPfB2Toul7wcFMk1yeQ", "SSv1/vov3d/finetune/vov3d_M_F32_finetune.yaml", "vov3d_M_f32_k400_ssv1.pth"
    ),
    "vov3d_L_f32_k400_ssv1": _release(
        _ETRI + "r2fJ4HSDSWmFYNo1ARZuHQ", "SSv1/vov3d/finetune/vov3d_L_F32_finetune.yaml", "vov3d_L_f32_k400_ssv1.pth"
    ),
    # Something-Something V2
    "x3d_M_ssv2": _release(_DROPBOX + "b6gjywzrn85sa89/x3d_M_ssv2.pth", "SSv2/x3d/x3d_M.yaml"),
    "x3d_L_ssv2": _release(_DROPBOX + "iaqwbejrkbd7372/x3d_L_ssv2.pth", "SSv2/x3d/x3d_L.yaml"),
    "vov3d_M_f16_ssv2": _release(_DROPBOX + "hz34ltdl6iukdxc/vov3d_M_f16_ssv2.pth", "SSv2/vov3d/vov3d_M_F16.yaml"),
    "vov3d_M_f32_ssv2": _release(_DROPBOX + "z6qtyjgf0v13jnq/vov3d_M_f32_ssv2.pth", "SSv2/vov3d/vov3d_M_F32.yaml"),
    "vov3d_L_f16_ssv2": _release(_DROPBOX + "678efl8zyrmq7ch/vov3d_L_f16_ssv2.pth", "SSv2/vov3d/vov3d_L_F16.yaml"),
    "vov3d_L_f32_ssv2": _release(_DROPBOX + "f4330e5htdiwqa5/vov3d_L_f32_ssv2.pth", "SSv2/vov3d/vov3d_L_F32.yaml"),
    "vov3d_M_f32_k400_ssv2": _release(
        _ETRI + "PHQw3KwbRI-lIcopWjm-ew", "SSv2/vov3d/finetune/vov3d_M_F32_finetune.yaml", "vov3d_M_f32_k400_ssv2.pth"
    ),
    "vov3d_L_f32_k400_ssv2": _release(
        _ETRI + "pEg57hjpSkOp2boe1oNZvQ", "SSv2/vov3d/finetune/vov3d_L_F32_finetune.yaml", "vov3d_L_f32_k400_ssv2.pth"
    ),
}


def cache_dir() -> str:
    """``$VOV3D_CACHE``, else ``$TORCH_HOME/vov3d/checkpoints`` (torch.hub's TORCH_HOME default)."""
    if os.environ.get(CACHE_ENV):
        return os.path.expanduser(os.environ[CACHE_ENV])
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(cache_home, "torch")
    return os.path.join(os.path.expanduser(torch_home), "vov3d", "checkpoints")


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def url_filename(url: str) -> str:
    """The last component of the URL's path (as torch.hub names its cache files)."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise CheckpointError(f"{url}: the URL names no file; give the URL of the checkpoint file itself")
    return name


def resolve_checkpoint(spec: str) -> str:
    """The local file of a checkpoint given as a path (returned unchanged), an http(s) URL or a
    zoo name; URLs and names are downloaded on first use into ``cache_dir()``."""
    if is_url(spec):
        url, name, size, sha256, licence = spec, url_filename(spec), None, None, None
    elif spec in ZOO:
        entry = ZOO[spec]
        url, name, size, sha256, licence = entry.url, entry.cache_name, entry.size, entry.sha256, entry.licence
    elif _ZOO_NAME.fullmatch(spec) and not os.path.exists(spec):
        close = difflib.get_close_matches(spec, ZOO, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise CheckpointError(
            f"checkpoint {spec!r}: no such file and not a model zoo name.{hint} Give a file path, an "
            f"http(s) URL or one of: {', '.join(ZOO)}"
        )
    else:
        return spec
    path = os.path.join(cache_dir(), name)
    if os.path.isfile(path):
        problems = _problems(path, None, size, sha256)
        if not problems:
            return path
        logger.warning("cached checkpoint %s is not the published file (%s): downloading it again", path, problems)
    if licence:
        logger.info("%s: the weights are under %s, not vov3d's licence", spec, licence)
    download(url, path, size=size, sha256=sha256)
    return path


def download(url: str, path: str, size: Optional[int] = None, sha256: Optional[str] = None) -> None:
    """Fetch ``url`` to ``path`` atomically; raise CheckpointDownloadError (and leave no file)
    when it fails, differs from its Content-Length or differs from ``size`` / ``sha256``."""
    folder = os.path.dirname(path) or "."
    by_hand = f"download it by other means and put it at {path} (or set ${CACHE_ENV} to a folder holding it)"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise CheckpointDownloadError(f"cannot create the checkpoint cache {folder} ({e}); {by_hand}") from e
    logger.info("downloading %s to %s", url, path)
    with atomic_path(path, suffix=".part") as tmp:
        with open(tmp, "wb") as out:
            expected = _fetch(url, out, os.path.basename(path), by_hand)
        problems = _problems(tmp, expected, size, sha256)
        if problems:
            raise CheckpointDownloadError(f"download of {url} refused: {problems}; retry, or {by_hand}")


def _problems(path: str, announced: Optional[int], size: Optional[int], sha256: Optional[str]) -> str:
    """How the file at ``path`` differs from the announced length, the size and the sha256; "" if
    it does not."""
    problems, received = [], os.path.getsize(path)
    if announced is not None and received != announced:
        problems.append(f"received {received} of the {announced} bytes the server announced (truncated)")
    if size is not None and received != size:
        problems.append(f"{received} bytes, expected {size}")
    if sha256 is not None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256.lower():
            problems.append(f"sha256 {digest.hexdigest()}, expected {sha256}")
    return "; ".join(problems)


def _fetch(url: str, out: BinaryIO, label: str, by_hand: str) -> Optional[int]:
    """Stream ``url`` into ``out``; returns the Content-Length the server announced, if any."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            if response.headers.get_content_type() == "text/html":
                raise CheckpointDownloadError(
                    f"{url} serves a web page, not a checkpoint file: open it in a browser, then {by_hand}"
                )
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(total=expected, unit="B", unit_scale=True, desc=label, disable=None) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts, cut connections
        raise CheckpointDownloadError(f"could not download {url} ({e}); {by_hand}") from e
    return expected
