"""Obtaining the four MNIST IDX files from a list of sources, verified by content.

A source is a local directory, or a URL (``http://``, ``https://`` or ``file://``)
naming a directory. Each file is looked up as ``<name>.gz`` and then ``<name>``; gzip
is recognised by its magic bytes, so a source may serve either. The SHA-256 of the
DECOMPRESSED content is checked against ``MNIST_SHA256``, whatever the compression:
mirrors recompress, and only the content is canonical.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from .. import atomic

# SHA-256 of the decompressed IDX files (the MNIST database of LeCun, Cortes, Burges).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_GZIP_MAGIC = b"\x1f\x8b"


class MnistUnavailableError(RuntimeError):
    """No source delivered a file with the expected content."""


@dataclass(frozen=True)
class Attempt:
    source: str
    file: str
    problem: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decompress_if_gzip(data: bytes, name: str) -> bytes:
    """Return the content of ``data``, gunzipped when it starts with the gzip magic."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: corrupt or truncated gzip stream ({exc})") from exc


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in {"http", "https", "file"}


def _read_from_source(source: str, filename: str, timeout: float) -> bytes:
    """Bytes of ``filename`` at ``source``; raises FileNotFoundError/OSError on failure."""
    if _is_url(source):
        url = source.rstrip("/") + "/" + filename
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise FileNotFoundError(f"HTTP {exc.code} for {url}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise OSError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
    path = Path(source).expanduser() / filename
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    return path.read_bytes()


def fetch_one(
    name: str, expected: str, sources: list[str], timeout: float, attempts: list[Attempt]
) -> bytes | None:
    """Content of file ``name`` from the first source whose copy has SHA-256 ``expected``, else
    None.

    Every failed try is appended to ``attempts`` so the caller can explain them all.
    """
    for source in sources:
        for filename in (name + ".gz", name):
            try:
                content = decompress_if_gzip(_read_from_source(source, filename, timeout), filename)
            except FileNotFoundError as exc:
                attempts.append(Attempt(source, filename, str(exc)))
                continue
            except (OSError, ValueError) as exc:
                attempts.append(Attempt(source, filename, str(exc)))
                break  # unreachable source or corrupt archive: try the next source
            digest = sha256_hex(content)
            if digest == expected:
                return content
            attempts.append(
                Attempt(source, filename, f"content SHA-256 {digest} != expected {expected}")
            )
            break
    return None


def fetch_mnist(
    raw_dir: str | Path,
    sources: list[str],
    timeout: float = 30.0,
    expected: dict[str, str] = MNIST_SHA256,
) -> dict[str, Path]:
    """Write the four decompressed, verified MNIST IDX files into ``raw_dir``.

    ``expected`` maps file name -> SHA-256 of its decompressed content (MNIST's by default).
    Sources are tried in order for each file. Files already in ``raw_dir`` with the
    right content are kept. Each file is written atomically. Returns name -> path.
    Raises MnistUnavailableError, listing every source tried and why it failed, when a
    file cannot be obtained; files already verified are left in place.
    """
    if not sources:
        raise MnistUnavailableError("no MNIST source configured (set MNIST_MIRROR or data.mirrors)")
    raw_dir = Path(raw_dir)
    paths: dict[str, Path] = {}
    for name, digest in expected.items():
        target = raw_dir / name
        if target.is_file() and sha256_hex(target.read_bytes()) == digest:
            paths[name] = target
            continue
        attempts: list[Attempt] = []
        content = fetch_one(name, digest, sources, timeout, attempts)
        if content is None:
            tried = "\n".join(f"  - {a.source} [{a.file}]: {a.problem}" for a in attempts)
            raise MnistUnavailableError(
                f"could not obtain a verified copy of {name} from any source:\n{tried}\n"
                "Point MNIST_MIRROR (or data.mirror in params.yaml) at a directory or URL "
                "holding the MNIST IDX files."
            )
        atomic.write_bytes(target, content)
        paths[name] = target
    return paths
