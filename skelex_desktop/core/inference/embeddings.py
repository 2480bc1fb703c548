"""Image embeddings of a model package, cached under `data_dir/cache/embeddings/`.

One entry per (image content hash, frame, embedding identity of the model package; see
`Manifest.embedding_identity`): `<key>.npy`, a float32 [D] vector written to a temporary name
and renamed, so a reader never sees half an entry. Packages that differ only in what does not
change an embedding (e.g. calibrated error-map thresholds) share their entries. Entries written
before embedding identities are keyed by a manifest sha256; they are still read for that
package (its own or one its manifest supersedes), and copied under the identity when found.
Preprocessing is exactly the error map's (`to_model_u8` + `normalise` with the manifest's
settings), so an embedding and an error map of one image see the same model input.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.inference.cache import cache_key
from skelex_desktop.core.inference.interfaces import AnalysisService, ModelManifest
from skelex_desktop.core.ingest.image_paths import resolve_image_path
from skelex_desktop.core.progress import Progress, check

BATCH_SIZE = 16


def embedding_key(content_hash: str, frame: int, embedding_identity: str) -> str:
    """The cache key of one image frame's embedding by packages of `embedding_identity`
    (`Manifest.embedding_identity`; a manifest sha256 for entries of older versions)."""
    return cache_key(content_hash, embedding_identity, frame=frame, kind="embedding")


class EmbeddingCache:
    """Embeddings by key, one atomic .npy file each."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> EmbeddingCache:
        return cls(Path(data_dir) / "cache" / "embeddings")

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, key: str, vector: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, np.asarray(vector, np.float32))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class ImageRef:
    """What locating an image's pixels and its cache entry needs."""

    image_id: int
    file_path: Path
    frame: int
    content_hash: str


def image_refs(db: Database, image_ids: Iterable[int] | None = None) -> list[ImageRef]:
    """References of the given images (all images when None), in id order."""
    query = select(Image.id, Image.file_path, Image.frame, Image.content_hash).order_by(Image.id)
    if image_ids is not None:
        ids = sorted(set(image_ids))
        query = query.where(Image.id.in_(ids))
    with db.read() as session:
        rows = session.execute(query).all()
    root = db.image_root  # `root:` paths resolved here; a missing file fails when read
    refs = [ImageRef(r[0], resolve_image_path(r[1], root, False), int(r[2]), r[3]) for r in rows]
    if image_ids is not None and len(refs) != len(ids):
        missing = sorted(set(ids) - {r.image_id for r in refs})
        raise ValueError(f"no image with id {', '.join(map(str, missing))}")
    return refs


def model_input(pixels: np.ndarray, manifest: ModelManifest) -> np.ndarray:
    """[3, S, S] float32: the same model input the error map uses."""
    from skelex_desktop.core.inference.preprocess import normalise, to_model_u8

    prep = manifest.preprocessing
    rgb, _geometry = to_model_u8(pixels, prep)
    return normalise(rgb, prep)


@dataclass
class EmbeddingResult:
    """Embeddings by image id, and how many were computed (the rest came from the cache)."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    computed: int = 0
    cached: int = 0


def cached_embedding(
    cache: EmbeddingCache, ref: ImageRef, identity: str, legacy: Sequence[str] = ()
) -> np.ndarray | None:
    """The cached embedding of `ref` under the embedding identity `identity`; else under one of
    the manifest sha256s `legacy` of that package (`Manifest.manifest_shas`: an entry of an
    older version of the app, then copied under the identity)."""
    key = embedding_key(ref.content_hash, ref.frame, identity)
    vector = cache.get(key)
    if vector is not None:
        return vector
    for sha in legacy:
        vector = cache.get(embedding_key(ref.content_hash, ref.frame, sha))
        if vector is not None:
            cache.put(key, vector)
            return vector
    return None


def cached_embeddings(
    data_dir: Path, refs: Sequence[ImageRef], manifest: ModelManifest
) -> dict[int, np.ndarray]:
    """The cached embeddings by the package `manifest` among `refs` (images without an entry
    are left out)."""
    cache = EmbeddingCache.for_data_dir(data_dir)
    identity = manifest.embedding_identity
    found = {}
    for ref in refs:
        vector = cached_embedding(cache, ref, identity, manifest.manifest_shas)
        if vector is not None:
            found[ref.image_id] = vector
    return found


def embed_images(
    db: Database,
    service: AnalysisService,
    image_ids: Iterable[int],
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> EmbeddingResult:
    """Embeddings of `image_ids` with `service.runtime` (an ErrorMapService), cached.

    Cache misses are read, preprocessed and embedded `batch_size` at a time; each batch is
    cached as soon as it is computed, so a cancel keeps the finished work.
    """
    from skelex_desktop.core.ingest.pixels import read_frame

    refs = image_refs(db, image_ids)
    runtime = service.runtime
    manifest = runtime.manifest
    identity = manifest.embedding_identity
    cache = EmbeddingCache.for_data_dir(Path(service.settings.data_dir))
    result = EmbeddingResult()
    if progress is not None:
        progress.set_total(len(refs))
        progress.set_status("embedding images")
    pending: list[tuple[ImageRef, np.ndarray]] = []

    def flush() -> None:
        batch = np.stack([x for _ref, x in pending])
        vectors = runtime.embed(batch)
        for (ref, _x), vector in zip(pending, vectors, strict=True):
            cache.put(embedding_key(ref.content_hash, ref.frame, identity), vector)
            result.vectors[ref.image_id] = np.asarray(vector, np.float32)
        result.computed += len(pending)
        if progress is not None:
            progress.advance(len(pending))
        pending.clear()

    for ref in refs:
        check(progress)
        hit = cached_embedding(cache, ref, identity, manifest.manifest_shas)
        if hit is not None:
            result.vectors[ref.image_id] = hit
            result.cached += 1
            if progress is not None:
                progress.advance(1, current=str(ref.image_id))
            continue
        decoded = read_frame(ref.file_path, ref.frame)
        pixels = decoded.model_pixels
        pending.append((ref, model_input(pixels, manifest)))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return result
