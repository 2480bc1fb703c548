"""After an activation (or a rollback), the active heads predict for every embedded image that
lacks their predictions, so the review panel never shows a deactivated head's suggestion."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.embeddings import cached_embeddings, image_refs
from skelex_desktop.core.heads.predict import predict_with_active_heads
from skelex_desktop.core.heads.versions import EMBEDDING_MODEL, applies_to
from skelex_desktop.core.inference.package import Manifest, PackageError, read_manifest
from skelex_desktop.core.progress import Progress


def head_package(settings: Any, file_sha256: Mapping[str, Any] | None) -> Manifest | None:
    """The installed package whose embeddings a version recording `file_sha256` applies to
    (`versions.applies_to`): the active package when it does, else the first other one by
    name; None when none does. Manifests are read, not verified (only their cached embeddings
    are used)."""
    from skelex_desktop.core.inference.registry import Registry

    if not (file_sha256 or {}).get(EMBEDDING_MODEL):
        return None
    registry = Registry.from_settings(settings)
    active = str(getattr(settings, "active_model", "") or "")
    names = registry.names()
    for name in sorted(names, key=lambda n: n != active):
        try:
            manifest = read_manifest(registry.folder(name)[0])
        except PackageError:
            continue
        if applies_to(file_sha256, manifest):
            return manifest
    return None


def refresh_active_predictions(
    db: Database, data_dir: Path, manifest: Manifest, progress: Progress | None = None
) -> int:
    """Predictions added by the active heads that apply to `manifest`, for the images with a
    cached embedding by that package (nothing is embedded here)."""
    if progress is not None:
        progress.set_status("recomputing predictions of the active heads")
    vectors = cached_embeddings(Path(data_dir), image_refs(db), manifest)
    return predict_with_active_heads(db, Path(data_dir), vectors, manifest)
