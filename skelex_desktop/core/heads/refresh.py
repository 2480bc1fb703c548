"""After an activation (or a rollback), the active heads predict for every embedded image that
lacks their predictions, so the review panel never shows a deactivated head's suggestion."""

from __future__ import annotations

from pathlib import Path

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.embeddings import cached_embeddings, image_refs
from skelex_desktop.core.heads.predict import predict_with_active_heads
from skelex_desktop.core.progress import Progress


def refresh_active_predictions(
    db: Database, data_dir: Path, package_sha256: str, progress: Progress | None = None
) -> int:
    """Predictions added for images embedded with `package_sha256` (cached embeddings only)."""
    if progress is not None:
        progress.set_status("recomputing predictions of the active heads")
    vectors = cached_embeddings(Path(data_dir), image_refs(db), package_sha256)
    return predict_with_active_heads(db, Path(data_dir), vectors, package_sha256)
