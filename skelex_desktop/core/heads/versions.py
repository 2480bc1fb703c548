"""Model versions: listing, the next version of a head, and activation (roll back/forward).

Activation is per model name: activating a version deactivates the other versions of the same
name only, so a head and the zero-shot model stay active side by side. `task_states` prefers
predictions of active versions.

Which model package a head applies to is decided here, once (`applies_to`): a head version
records in `file_sha256["embedding_model"]` the embedding identity of the package it was
trained on (`Manifest.embedding_identity`); versions stored before that record the package's
manifest sha256 and still apply to that package, also after it was rewritten with the same
embeddings (a rewritten manifest lists the sha256s it supersedes), until `adopt_legacy_heads`
re-records them under the identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import ModelVersion, Prediction
from skelex_desktop.core.inference.interfaces import ModelManifest, ServiceSettings
from skelex_desktop.core.inference.package import Manifest, PackageError
from skelex_desktop.core.inference.registry import Registry

HEAD_FILE = "head.npz"
EMBEDDING_MODEL = "embedding_model"  # the file_sha256 key naming the embeddings a head was fit on


class VersionError(ValueError):
    """An unknown model version; the message lists what exists."""


@dataclass(frozen=True)
class VersionView:
    """One model version as `model-version list` shows it."""

    id: int
    name: str
    version: str
    parent_id: int | None
    active: bool
    created_at: datetime
    predictions: int
    metrics: dict[str, Any]
    label_counts: dict[str, Any]
    file_sha256: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["created_at"] = self.created_at.isoformat()
        return data


def list_versions(db: Database) -> list[VersionView]:
    """Every model version by name, then creation order."""
    counts = (
        select(Prediction.model_version_id, func.count().label("n"))
        .group_by(Prediction.model_version_id)
        .subquery()
    )
    query = (
        select(ModelVersion, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.model_version_id == ModelVersion.id)
        .order_by(ModelVersion.name, ModelVersion.created_at, ModelVersion.id)
    )
    with db.read() as session:
        return [
            VersionView(
                mv.id,
                mv.name,
                mv.version,
                mv.parent_id,
                bool(mv.active),
                mv.created_at,
                int(n),
                dict(mv.metrics or {}),
                dict(mv.label_counts or {}),
                dict(mv.file_sha256 or {}),
            )
            for mv, n in session.execute(query)
        ]


def applies_to(file_sha256: Mapping[str, Any] | None, manifest: ModelManifest) -> bool:
    """Whether a version recording `file_sha256` was fit on embeddings of `manifest`.

    True when its `embedding_model` is the package's embedding identity, or (versions stored
    before embedding identities) the package's manifest sha256 or one it superseded
    (`Manifest.manifest_shas`: the same embeddings, e.g. before a recalibration).
    """
    recorded = (file_sha256 or {}).get(EMBEDDING_MODEL)
    if not recorded:
        return False
    if recorded in manifest.manifest_shas:
        return True
    try:
        return recorded == manifest.embedding_identity
    except PackageError:  # no embedding graph: nothing was embedded with it
        return False


def active_user_heads(session: Session, manifest: ModelManifest) -> list[ModelVersion]:
    """The active heads the user trained that apply to `manifest` (see `applies_to`), by id."""
    query = select(ModelVersion).where(ModelVersion.active.is_(True)).order_by(ModelVersion.id)
    return [
        v
        for v in session.scalars(query)
        if HEAD_FILE in (v.file_sha256 or {}) and applies_to(v.file_sha256, manifest)
    ]


def adopt_legacy_heads(db: Database, manifest: ModelManifest) -> int:
    """Re-record the versions whose `embedding_model` is one of `manifest`'s manifest sha256s
    (stored before embedding identities; see `applies_to`) under its embedding identity,
    audited; returns how many."""
    legacy = set(manifest.manifest_shas)
    with db.read() as session:
        ids = [
            v.id
            for v in session.scalars(select(ModelVersion))
            if (v.file_sha256 or {}).get(EMBEDDING_MODEL) in legacy
        ]
    if not ids:
        return 0
    identity = manifest.embedding_identity
    adopted = 0
    with db.write() as session:
        for version in session.scalars(select(ModelVersion).where(ModelVersion.id.in_(ids))):
            before = (version.file_sha256 or {}).get(EMBEDDING_MODEL)
            if before not in legacy:
                continue
            adopted += 1
            version.file_sha256 = {**version.file_sha256, EMBEDDING_MODEL: identity}
            audit.record(
                session,
                "skelex-desktop",
                "model_version.embedding_identity",
                "model_version",
                version.id,
                before={EMBEDDING_MODEL: before},
                after={EMBEDDING_MODEL: identity},
            )
    return adopted


def latest_version(session: Session, name: str) -> ModelVersion | None:
    """The newest version of `name` (highest number for numbered versions)."""
    rows = session.scalars(select(ModelVersion).where(ModelVersion.name == name)).all()
    if not rows:
        return None
    return max(
        rows,
        key=lambda mv: (
            mv.version.isdigit(),
            int(mv.version) if mv.version.isdigit() else 0,
            mv.created_at,
            mv.id,
        ),
    )


def next_version(session: Session, name: str) -> str:
    """ "1" for a new name, else one more than the highest numbered version."""
    numbers = [
        int(v)
        for v in session.scalars(select(ModelVersion.version).where(ModelVersion.name == name))
        if v.isdigit()
    ]
    return str(max(numbers, default=0) + 1)


def set_active(session: Session, target: ModelVersion) -> None:
    """Make `target` the one active version of its name (in the caller's transaction)."""
    for other in session.scalars(select(ModelVersion).where(ModelVersion.name == target.name)):
        other.active = other.id == target.id


def activate_version(db: Database, name: str, version: str, who: str) -> VersionView:
    """Activate `name` `version` (an older one rolls back), audited."""
    with db.write() as session:
        target = session.scalar(
            select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
        )
        if target is None:
            known = session.scalars(
                select(ModelVersion.version).where(ModelVersion.name == name)
            ).all()
            raise VersionError(
                f"no model version {name} {version}; "
                + (f"versions of {name}: {', '.join(known)}" if known else f"no model named {name}")
            )
        before = session.scalar(
            select(ModelVersion.version).where(
                ModelVersion.name == name, ModelVersion.active.is_(True)
            )
        )
        set_active(session, target)
        audit.record(
            session,
            who,
            "model_version.activate",
            "model_version",
            target.id,
            before={"active": before},
            after={"active": version},
        )
        target_id = target.id
    return next(v for v in list_versions(db) if v.id == target_id)


def head_package(
    settings: ServiceSettings, file_sha256: Mapping[str, Any] | None
) -> Manifest | None:
    """The installed package whose embeddings a version recording `file_sha256` applies to
    (`applies_to`): the active package when it does, else the first other one by name; None
    when none does. Only trusted manifests count (`Registry.read`: an edited or unknown one
    is skipped, as loading it would be refused); their files are not hashed here (the
    pipeline's service verifies the package it opens)."""
    if not (file_sha256 or {}).get(EMBEDDING_MODEL):
        return None
    registry = Registry.from_settings(settings)
    active = str(getattr(settings, "active_model", "") or "")
    names = registry.names()
    for name in sorted(names, key=lambda n: n != active):
        try:
            manifest = registry.read(name)
        except PackageError:
            continue
        if applies_to(file_sha256, manifest):
            return manifest
    return None
