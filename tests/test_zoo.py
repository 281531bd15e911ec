"""Published checkpoints by name or URL: downloaded once from a local HTTP server into the cache,
served from the cache with the server gone, and refused (and not cached) when incomplete."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from vov3d import zoo
from vov3d.config import load_config
from vov3d.engine.run_folder import read_file_or_run
from vov3d.zoo import ZOO, CheckpointDownloadError, ZooEntry, resolve_checkpoint

PAYLOAD = bytes(range(256)) * 40


class Handler(http.server.BaseHTTPRequestHandler):
    """``/ok.pth``: the payload; ``/cut.pth``: announces the payload but sends half of it;
    ``/page.pth``: an HTML page (what a share link without direct download serves); the paths
    in ``files``: their bytes."""

    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body, content_type, length = PAYLOAD, "application/octet-stream", len(PAYLOAD)
        if self.path in self.files:
            body = self.files[self.path]
            length = len(body)
        elif self.path == "/cut.pth":
            body = PAYLOAD[: len(PAYLOAD) // 2]
        elif self.path == "/page.pth":
            body = b"<html>sign in</html>"
            content_type, length = "text/html; charset=utf-8", len(body)
        elif self.path != "/ok.pth":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd: http.server.ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def stop(httpd: http.server.ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME; the cache is its vov3d/checkpoints."""
    monkeypatch.delenv(zoo.CACHE_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "vov3d" / "checkpoints"


def test_url_downloads_once_then_comes_from_the_cache(server, cache: Path) -> None:
    path = resolve_checkpoint(url(server, "/ok.pth"))
    assert Path(path) == cache / "ok.pth" and Path(path).read_bytes() == PAYLOAD
    stop(server)
    assert resolve_checkpoint(url(server, "/ok.pth")) == path
    assert sorted(p.name for p in cache.iterdir()) == ["ok.pth"]  # no temporary file left


def test_checkpoint_readers_take_a_url(server, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What TRAIN/TEST.CHECKPOINT_FILE_PATH and --checkpoint go through: a URL is read like a file."""
    state = {"head.projection.weight": torch.ones(2, 3)}
    buffer = io.BytesIO()
    torch.save({"epoch": 3, "model_state": state}, buffer)
    monkeypatch.setitem(Handler.files, "/model.pth", buffer.getvalue())
    path, checkpoint = read_file_or_run(url(server, "/model.pth"))
    assert Path(path) == cache / "model.pth" and checkpoint["epoch"] == 3
    assert torch.equal(checkpoint["model_state"]["head.projection.weight"], state["head.projection.weight"])


def test_zoo_name_with_known_size_and_sha256(server, cache: Path, monkeypatch: pytest.MonkeyPatch, vov3d_log) -> None:
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    good = ZooEntry(url(server, "/ok.pth"), "configs/x.yaml", "test", size=len(PAYLOAD), sha256=sha256)
    wrong = dataclasses.replace(good, filename="wrong.pth", sha256="0" * 64)
    monkeypatch.setitem(ZOO, "good_k400", good)
    monkeypatch.setitem(ZOO, "wrong_k400", wrong)
    assert Path(resolve_checkpoint("good_k400")).read_bytes() == PAYLOAD
    assert "good_k400: the weights are under test, not vov3d's licence" in vov3d_log.text
    (cache / "ok.pth").write_bytes(PAYLOAD[:-1] + b"x")  # same size, other bytes: fetched again
    assert Path(resolve_checkpoint("good_k400")).read_bytes() == PAYLOAD
    assert "is not the published file (sha256" in vov3d_log.text
    with pytest.raises(CheckpointDownloadError, match=f"sha256 {sha256}, expected 0000"):
        resolve_checkpoint("wrong_k400")
    assert sorted(p.name for p in cache.iterdir()) == ["ok.pth"]


def test_truncated_download_is_refused_and_not_cached(server, cache: Path) -> None:
    with pytest.raises(
        CheckpointDownloadError, match=r"received 5120 of the 10240 bytes .*truncated.*put it at .*cut.pth"
    ):
        resolve_checkpoint(url(server, "/cut.pth"))
    assert list(cache.iterdir()) == []


def test_web_page_is_refused(server, cache: Path) -> None:
    with pytest.raises(CheckpointDownloadError, match="serves a web page"):
        resolve_checkpoint(url(server, "/page.pth"))
    assert list(cache.iterdir()) == []


def test_offline_message_names_url_and_path(server, cache: Path, tmp_path: Path, monkeypatch) -> None:
    address = url(server, "/ok.pth")
    stop(server)
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "mine"))
    with pytest.raises(CheckpointDownloadError) as error:
        resolve_checkpoint(address)
    assert f"could not download {address}" in str(error.value)
    assert f"put it at {tmp_path / 'mine' / 'ok.pth'}" in str(error.value)
    (tmp_path / "mine" / "ok.pth").write_bytes(b"by hand")
    assert resolve_checkpoint(address) == str(tmp_path / "mine" / "ok.pth")


def test_paths_pass_through_and_unknown_names_list_the_zoo(tmp_path: Path) -> None:
    assert resolve_checkpoint("output/checkpoints/checkpoint_epoch_00010.pyth") == (
        "output/checkpoints/checkpoint_epoch_00010.pyth"
    )
    assert resolve_checkpoint("") == ""
    with pytest.raises(zoo.CheckpointError, match=r"not a model zoo name. Did you mean vov3d_L_k400\?.*x3d_M_k400"):
        resolve_checkpoint("vov3d_L_k40")


def test_cache_follows_torch_home_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in (zoo.CACHE_ENV, "TORCH_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert zoo.cache_dir() == str(tmp_path / "torch" / "vov3d" / "checkpoints")


def test_zoo_matches_the_seed_readme_and_configs(shared_dir: Path) -> None:
    seed = "".join(path.read_text() for path in (shared_dir / "seed").glob("*.txt"))
    readme = (REPO / "README.md").read_text()
    assert readme.index("## Training and testing") < readme.index("## Model zoo")
    for name, entry in ZOO.items():
        assert entry.url in seed, f"{name}: {entry.url} is not a published link"
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")), "")
        assert entry.url in row and f"`{entry.config}`" in row, f"{name}: no README row with its link and config"
        cfg = load_config([str(REPO / entry.config)])
        assert name.startswith(cfg.MODEL.MODEL_NAME.lower()), (name, entry.config)
        if "_f16" in name or "_f32" in name:
            assert f"_f{cfg.DATA.NUM_FRAMES}" in name, (name, entry.config)
        dataset = name.rsplit("_", 1)[1]
        assert dataset == "k400" and cfg.TRAIN.DATASET == "kinetics" or dataset == cfg.TRAIN.DATASET, name
