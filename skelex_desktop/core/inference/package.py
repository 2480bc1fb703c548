"""Model packages on disk: `manifest.json` + ONNX files, each checked against its sha256.

Format 1: each graph is one `.onnx` file holding its weights (external data beside it only
over 2 GB). Format 2 (what `model import` writes): the graphs are small `.onnx` files whose
weights live once in a shared file (`weights.bin`, and `weights.int8.bin` for the int8 copies),
listed as each graph's further `files`; sessions take them from one verified buffer.

A package's identity (`package_sha256`) is the sha256 of its manifest, which lists the sha256
of every other file. Its embedding identity (`Manifest.embedding_identity`) covers only what
determines an embedding vector, so editing the error-map calibration keeps it. `model verify`
results are memoised per (path, inode, size, mtime, ctime) for the process, so a package is
hashed once per session unless a file changes; sessions are built from bytes hashed as they
are read (`read_verified`, `read_verified_buffer`), never from a memo. These functions check a package's files against its manifest;
whether the manifest itself is to be believed is the registry's question (`trust.py`): load
packages by name through `Registry.manifest`, never from a folder.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skelex_desktop.core.inference.interfaces import GraphSpec, ModelManifest
from skelex_desktop.core.inference.preprocess import Preprocessing

MANIFEST = "manifest.json"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_package_name(name: str) -> None:
    """Refuse a package name that is empty, hidden or has characters outside NAME_CHARS."""
    if not name or set(name) - NAME_CHARS or name.startswith("."):
        raise PackageError(f"invalid package name {name!r}: use letters, digits, - _ .")


def write_manifest(
    folder: Path,
    manifest: dict[str, Any],
    before_replace: Callable[[bytes], object] | None = None,
) -> str:
    """Replace `folder/manifest.json` atomically (temporary file, then rename); returns the
    new manifest's sha256.

    When it replaces a manifest with the same embedding identity (a recalibration, new heads),
    the old manifest's sha256 joins `manifest["supersedes"]` (with the old one's list): head
    versions and cached embeddings recorded under a manifest sha256 by older versions of the
    app keep applying to the package (`Manifest.manifest_shas`). `before_replace` receives the
    new manifest's exact bytes before they replace the old ones (the application records
    their digest as trusted there, `TrustStore.recorder`); when it raises, nothing is replaced.
    """
    superseded = _superseded(folder / MANIFEST, manifest)
    if superseded:
        manifest[SUPERSEDES] = superseded
    else:
        manifest.pop(SUPERSEDES, None)
    raw = json.dumps(manifest, indent=2).encode("utf-8")
    tmp = folder / (MANIFEST + ".tmp")
    try:
        tmp.write_bytes(raw)
        if before_replace is not None:
            before_replace(raw)
        os.replace(tmp, folder / MANIFEST)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256_bytes(raw)


def _superseded(path: Path, manifest: dict[str, Any]) -> list[str]:
    """The sha256s `manifest` supersedes once written over the manifest at `path`: that one's
    list, `manifest`'s own and that one itself when their embedding identities agree; none
    when they differ (other embeddings); `manifest`'s own when there is nothing at `path` (a
    copy of a package into a new folder)."""
    own = _listed_superseded(manifest)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return own
    except OSError:
        return []
    try:
        old = json.loads(raw)
        same = embedding_identity(old) == embedding_identity(manifest)
    except (ValueError, PackageError, AttributeError, TypeError):
        return []
    if not same:
        return []
    return list(dict.fromkeys([*_listed_superseded(old), *own, sha256_bytes(raw)]))


def _listed_superseded(data: dict[str, Any]) -> list[str]:
    """The sha256s a manifest's `supersedes` lists (anything else there is ignored)."""
    return [x for x in data.get(SUPERSEDES) or [] if isinstance(x, str)]


FORMAT = "skelex-model-package"
FORMAT_VERSION = 2
SHARED_WEIGHTS_VERSION = 2  # from this format on, graphs share their weights files
EMBEDDING_GRAPH = "embedding"
SUPERSEDES = "supersedes"
EMBEDDING_IDENTITY_VERSION = 1
_CHUNK = 1 << 20

_memo: dict[tuple[str, int, int, int, int], str] = {}
_memo_lock = threading.Lock()


class PackageError(ValueError):
    """A model package that is missing, damaged or unusable; the message says why."""


def sha256_file(path: Path) -> str:
    """sha256 of a file, memoised while its inode, size, modification and change times are
    unchanged (a write moves the change time, which `utime` cannot set back)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _memo_lock:
        _memo[key] = value
    return value


def remember_sha256(path: Path, digest: str) -> None:
    """Record the sha256 of a file this process has just written and closed, hashed while it
    was written (`weight_store.WeightFile`), so `sha256_file` need not read it again; keyed
    like `sha256_file`'s memo, so any later change of the file is hashed afresh."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _memo_lock:
        _memo[key] = digest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    """The parsed `manifest.json` of a package, with the fields inference needs typed."""

    data: dict[str, Any]
    folder: Path
    sha256: str
    preprocessing: Preprocessing = field(init=False)

    def __post_init__(self) -> None:
        prep = self.data.get("preprocessing", {})
        try:
            self.preprocessing = Preprocessing(
                size=int(prep["size"]),
                mean=tuple(prep["mean"]),
                std=tuple(prep["std"]),
                resize=prep.get("resize", "resize"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PackageError(
                f"{self.folder.name}: manifest preprocessing is invalid: {exc}"
            ) from exc

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def version(self) -> str:
        return str(self.data.get("version", ""))

    @property
    def format_version(self) -> int:
        return int(self.data.get("format_version", 1))

    @property
    def patch_size(self) -> int:
        return int(self.data["patch_size"])

    @property
    def mask_ratio(self) -> float:
        return float(self.data["mask_ratio"])

    @property
    def errormap(self) -> dict[str, Any]:
        return dict(self.data.get("errormap", {}))

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("files", {}))

    def graph(self, name: str) -> GraphSpec:
        graphs = self.data.get("graphs", {})
        if name not in graphs:
            raise PackageError(f"package {self.name} has no '{name}' graph")
        g = graphs[name]
        return GraphSpec(
            name,
            g["file"],
            tuple(g.get("files", [g["file"]])),
            g.get("inputs", {}),
            g.get("outputs", {}),
        )

    def has_graph(self, name: str) -> bool:
        return name in self.data.get("graphs", {})

    @property
    def manifest_shas(self) -> tuple[str, ...]:
        """This manifest's sha256 and those it superseded with the same embeddings."""
        return tuple(dict.fromkeys([self.sha256, *_listed_superseded(self.data)]))

    @property
    def embedding_identity(self) -> str:
        """The identity of this package's embeddings (see `embedding_identity`)."""
        return embedding_identity(self.data, self.name)


def embedding_identity(data: dict[str, Any], name: str = "package") -> str:
    """sha256 identifying the embedding vectors a package's manifest `data` produces.

    It is the sha256 of the compact, key-sorted JSON of
    `{"embedding_identity": 1, "graph": <graphs.embedding>, "files": {<each file of that graph>:
    <its sha256 in files>}, "preprocessing": <preprocessing>}`: the embedding graph's bytes,
    its declaration (files, inputs, outputs and their meaning, i.e. the pooling) and the
    preprocessing that makes its input. Nothing else counts: not `errormap` (thresholds,
    low-pass, structure table, calibration record), `heads`, the reconstruction graphs, `name`,
    `version`, `created`, the model card, `parity` or `provenance`. So calibrating a package in
    place keeps it, while a new embedding graph (re-import, fine-tuning) or new preprocessing
    changes it. Raises PackageError when the manifest has no embedding graph or does not list
    the sha256 of one of its files.
    """
    graph = (data.get("graphs") or {}).get(EMBEDDING_GRAPH)
    if not isinstance(graph, dict) or "file" not in graph:
        raise PackageError(f"package {name} has no '{EMBEDDING_GRAPH}' graph")
    files = data.get("files") or {}
    shas = {}
    for file in graph.get("files", [graph["file"]]):
        sha = (files.get(file) or {}).get("sha256")
        if not sha:
            raise PackageError(f"{name}: {file} is not listed in the manifest")
        shas[str(file)] = str(sha)
    record = {
        "embedding_identity": EMBEDDING_IDENTITY_VERSION,
        "graph": graph,
        "files": shas,
        "preprocessing": data.get("preprocessing"),
    }
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256_bytes(text.encode("utf-8"))


def read_manifest(folder: Path) -> Manifest:
    """Parse and sanity-check `folder/manifest.json` (no file hashing here)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise PackageError(f"{folder.name}: no {MANIFEST} (not a model package)")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{folder.name}: {MANIFEST} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PackageError(f"{folder.name}: {MANIFEST} is not a SKELEX model package manifest")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise PackageError(
            f"{folder.name}: package format {data.get('format_version')} is newer than this "
            f"application supports ({FORMAT_VERSION}); update SKELEX Desktop"
        )
    for key in ("name", "files", "graphs", "patch_size", "mask_ratio", "preprocessing"):
        if key not in data:
            raise PackageError(f"{folder.name}: {MANIFEST} lacks '{key}'")
    return Manifest(data, folder, sha256_bytes(raw))


def verify_file(manifest: Manifest, name: str) -> None:
    """Raise PackageError unless `name` exists with the size and sha256 the manifest records."""
    entry = manifest.files.get(name)
    if entry is None:
        raise PackageError(f"{manifest.name}: {name} is not listed in the manifest")
    path = manifest.folder / name
    if not path.is_file():
        raise PackageError(f"{manifest.name}: file {name} is missing; reinstall or re-import")
    size = path.stat().st_size
    if "bytes" in entry and size != int(entry["bytes"]):
        raise PackageError(
            f"{manifest.name}: file {name} is {size} bytes, the manifest says {entry['bytes']} "
            "(truncated or replaced); the package is refused, reinstall or re-import it"
        )
    if sha256_file(path) != entry["sha256"]:
        raise PackageError(
            f"{manifest.name}: file {name} fails its sha256 check (damaged or tampered); "
            "the package is refused, reinstall or re-import it"
        )


def verify_package(folder: Path) -> Manifest:
    """The manifest of `folder` after every listed file passed its size and sha256 check."""
    manifest = read_manifest(folder)
    for name in manifest.files:
        verify_file(manifest, name)
    return manifest


def read_verified(manifest: ModelManifest, name: str) -> bytes:
    """The bytes of file `name`, checked against the manifest after reading (no window between
    the check and the use)."""
    entry = manifest.files.get(name)
    if entry is None:
        raise PackageError(f"{manifest.name}: {name} is not listed in the manifest")
    path = manifest.folder / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackageError(f"{manifest.name}: cannot read {name}: {exc}") from exc
    if len(data) != int(entry.get("bytes", len(data))) or sha256_bytes(data) != entry["sha256"]:
        raise PackageError(
            f"{manifest.name}: file {name} fails its sha256 check (damaged, truncated or "
            "tampered); the package is refused, reinstall or re-import it"
        )
    return data


def read_verified_buffer(manifest: ModelManifest, name: str) -> np.ndarray:
    """The bytes of file `name` as a uint8 array, hashed while they are read (the hash of one
    chunk runs while the next is read) and checked against the manifest before they are
    returned: the array is private memory, so what was checked is what is used."""
    entry = manifest.files.get(name)
    if entry is None:
        raise PackageError(f"{manifest.name}: {name} is not listed in the manifest")
    path = manifest.folder / name
    expected = int(entry["bytes"]) if "bytes" in entry else None
    try:
        size = path.stat().st_size
        if expected is not None and size != expected:
            raise PackageError(
                f"{manifest.name}: file {name} is {size} bytes, the manifest says {expected} "
                "(truncated or replaced); the package is refused, reinstall or re-import it"
            )
        buffer = private_buffer(size)
        digest, done = _read_hashing(path, buffer.data)
    except FileNotFoundError as exc:
        raise PackageError(
            f"{manifest.name}: file {name} is missing; reinstall or re-import"
        ) from exc
    except OSError as exc:
        raise PackageError(f"{manifest.name}: cannot read {name}: {exc}") from exc
    if done != size or digest != entry["sha256"]:
        raise PackageError(
            f"{manifest.name}: file {name} fails its sha256 check (damaged, truncated or "
            "tampered); the package is refused, reinstall or re-import it"
        )
    return buffer


_READ_CHUNK = 16 << 20


def private_buffer(size: int) -> np.ndarray:
    """A writable uint8 array of `size` bytes in private anonymous memory of small pages.

    numpy asks Linux for transparent huge pages for large arrays; on the 2-core VM of the
    issue #20 measurements, faulting 1.3 GB in as huge pages cost 2.0-2.7 s of system time
    against 0.8-1.0 s in 4 KiB pages (and 3-4 times the wall time under load), so the
    weights buffers are mapped here, without them.
    """
    if size == 0:
        return np.empty(0, np.uint8)
    if os.name == "posix":
        area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    else:
        area = mmap.mmap(-1, size)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        area.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(area, np.uint8)


def _read_hashing(path: Path, target: memoryview) -> tuple[str, int]:
    """Read `path` into `target`, hashing on a worker thread chunk by chunk; returns the sha256
    and the number of bytes read (more than `target` holds counts as one more)."""
    digest = hashlib.sha256()
    pending: Future[None] | None = None
    position = 0
    with ThreadPoolExecutor(1) as pool, path.open("rb", buffering=0) as handle:
        while position < len(target):
            count = handle.readinto(target[position : position + _READ_CHUNK])
            if not count:
                break
            if pending is not None:
                pending.result()
            pending = pool.submit(digest.update, target[position : position + count])
            position += count
        if pending is not None:
            pending.result()
        if handle.read(1):
            position += 1
    return digest.hexdigest(), position


def package_size(folder: Path, manifest: Manifest) -> int:
    return sum((folder / n).stat().st_size for n in manifest.files if (folder / n).is_file())
