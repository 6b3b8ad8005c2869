"""Obtaining files from directory and URL sources, verified by decompressed content."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import threading

import pytest

from l2path.data.mnist_files import MNIST_SHA256, MnistUnavailableError, fetch_mnist

FILES = {"alpha": b"first file content", "beta": bytes(range(256)) * 10}
EXPECTED = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}


def write_source(folder, compress=True, corrupt=()):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in FILES.items():
        if name in corrupt:
            data = data[:-1] + b"!"
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


@contextlib.contextmanager
def serve(folder):
    """A real HTTP server on 127.0.0.1 serving ``folder``; stopped on exit."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("compress", [True, False])
def test_directory_source_gz_or_plain(tmp_path, compress):
    source = write_source(tmp_path / "mirror", compress=compress)
    paths = fetch_mnist(tmp_path / "raw", [str(source)], expected=EXPECTED)
    assert {name: p.read_bytes() for name, p in paths.items()} == FILES


def test_corrupt_copy_falls_through_to_next_source(tmp_path):
    bad = write_source(tmp_path / "bad", corrupt=("beta",))
    good = write_source(tmp_path / "good", compress=False)
    paths = fetch_mnist(tmp_path / "raw", [str(bad), str(good)], expected=EXPECTED)
    assert paths["beta"].read_bytes() == FILES["beta"]


def test_http_source(tmp_path):
    source = write_source(tmp_path / "www")
    with serve(source) as url:
        paths = fetch_mnist(tmp_path / "raw", [url], expected=EXPECTED)
    assert paths["alpha"].read_bytes() == FILES["alpha"]


def test_every_source_failing_is_explained_and_leaves_nothing(tmp_path):
    bad = write_source(tmp_path / "bad", corrupt=("alpha", "beta"))
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "alpha.gz").write_bytes(gzip.compress(FILES["alpha"])[:-8])
    (tmp_path / "empty-www").mkdir()
    with serve(tmp_path / "empty-www") as url:
        unreachable = "http://127.0.0.1:9/"  # discard port: nothing listens
        with pytest.raises(MnistUnavailableError) as info:
            fetch_mnist(
                tmp_path / "raw",
                [str(truncated), str(bad), url, unreachable],
                timeout=2,
                expected=EXPECTED,
            )
    message = str(info.value)
    assert "alpha" in message and "MNIST_MIRROR" in message
    assert "corrupt or truncated gzip" in message
    assert "content SHA-256" in message
    assert "HTTP 404" in message
    assert "cannot reach http://127.0.0.1:9/" in message
    raw = tmp_path / "raw"
    assert not raw.exists() or list(raw.iterdir()) == []


def test_no_source_configured(tmp_path):
    with pytest.raises(MnistUnavailableError, match="no MNIST source"):
        fetch_mnist(tmp_path, [], expected=EXPECTED)


def test_real_mirror_files_verify(mirror, tmp_path):
    """The four real files from the offline mirror, checked against the published checksums."""
    paths = fetch_mnist(tmp_path / "raw", [str(mirror)])
    assert set(paths) == set(MNIST_SHA256)
    assert paths["t10k-labels-idx1-ubyte"].stat().st_size == 10008
    assert paths["train-images-idx3-ubyte"].stat().st_size == 47040016
