"""The embedding identity of a model package: what keys cached embeddings and decides which task
heads apply. Rewriting the error map (as `model calibrate` does) keeps it; a new embedding graph
or new preprocessing changes it; head versions recorded under the manifest sha256 (before
embedding identities) still apply to that package and are then re-recorded."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.models import AuditEvent, Image, ModelVersion, Prediction
from skelex_desktop.core.heads.predict import predict_with_active_heads
from skelex_desktop.core.heads.versions import (
    EMBEDDING_MODEL,
    adopt_legacy_heads,
    applies_to,
    head_package,
)
from skelex_desktop.core.inference.embeddings import (
    EmbeddingCache,
    embed_images,
    embedding_key,
    image_refs,
)
from skelex_desktop.core.inference.package import (
    MANIFEST,
    Manifest,
    PackageError,
    embedding_identity,
    sha256_file,
    verify_package,
    write_manifest,
)
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.inference.trust import TrustStore
from skelex_desktop.core.inference.user_calibration import _write_in_place
from tests.core.test_embeddings import import_synthetic, labelled_head_on
from tests.core.test_mae_helpers import copy_tiny_package

DEMO = Path(__file__).resolve().parents[2] / "models" / "skelex-demo"


def _rewrite_errormap(folder: Path, **changes: object) -> Manifest:
    """The package's manifest with `changes` in its errormap, written as calibrate writes it
    (recorded as trusted in the data dir holding `folder`'s models folder)."""
    manifest = verify_package(folder)
    data = copy.deepcopy(manifest.data)
    data["errormap"].update(changes)
    return _write_in_place(folder, manifest, data, TrustStore.for_data_dir(folder.parent.parent))


def test_identity_ignores_the_error_map_and_metadata() -> None:
    data = json.loads((DEMO / MANIFEST).read_text())
    identity = embedding_identity(data)
    assert len(identity) == 64 and identity == verify_package(DEMO).embedding_identity
    variants = {
        "thresholds": ("errormap", {**data["errormap"], "abnormal_threshold": 0.5}),
        "normalisation": ("errormap", {**data["errormap"], "normalisation": {"bins": [1]}}),
        "heads": ("heads", {}),
        "version": ("version", "9.9.9"),
        "created": ("created", "2030-01-01T00:00:00+00:00"),
        "name": ("name", "other"),
        "parity": ("parity", {}),
        "provenance": ("provenance", {}),
        "licence": ("licence", "CC0"),
    }
    for what, (key, value) in variants.items():
        changed = copy.deepcopy(data)
        changed[key] = value
        assert embedding_identity(changed) == identity, what
    other_files = copy.deepcopy(data)  # model card and reconstruction graph are not embeddings
    other_files["files"]["MODEL_CARD.md"]["sha256"] = "0" * 64
    other_files["files"]["reconstruction.onnx"]["sha256"] = "0" * 64
    assert embedding_identity(other_files) == identity


def test_identity_follows_the_embedding_graph_and_preprocessing() -> None:
    data = json.loads((DEMO / MANIFEST).read_text())
    identity = embedding_identity(data)
    changes = {
        "graph bytes": lambda d: d["files"]["embedding.onnx"].update(sha256="0" * 64),
        "resize": lambda d: d["preprocessing"].update(resize="letterbox"),
        "mean": lambda d: d["preprocessing"].update(mean=[0.5, 0.5, 0.5]),
        "size": lambda d: d["preprocessing"].update(size=256),
        "pooling": lambda d: d["graphs"]["embedding"]["outputs"]["embedding"].update(
            meaning="the CLS token"
        ),
        "graph file": lambda d: d["graphs"]["embedding"].update(
            file="reconstruction.onnx", files=["reconstruction.onnx"]
        ),
    }
    for what, change in changes.items():
        changed = copy.deepcopy(data)
        change(changed)
        assert embedding_identity(changed) != identity, what
    missing = copy.deepcopy(data)
    del missing["graphs"]["embedding"]
    with pytest.raises(PackageError, match="no 'embedding' graph"):
        embedding_identity(missing)
    unlisted = copy.deepcopy(data)
    del unlisted["files"]["embedding.onnx"]
    with pytest.raises(PackageError, match="embedding.onnx is not listed"):
        embedding_identity(unlisted)


def test_real_package_keeps_its_identity_through_an_error_map_rewrite(tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    folder = copy_tiny_package(tmp_path / "models")
    before = verify_package(folder)
    after = _rewrite_errormap(folder, abnormal_threshold=0.01, hotspot_threshold=0.02)
    assert after.sha256 != before.sha256
    assert after.embedding_identity == before.embedding_identity
    assert after.manifest_shas == (after.sha256, before.sha256)  # same embeddings: superseded

    data = copy.deepcopy(after.data)  # new preprocessing, written and verified
    data["preprocessing"]["resize"] = "letterbox"
    write_manifest(folder, data)
    letterbox = verify_package(folder)
    assert letterbox.preprocessing.resize == "letterbox"
    assert letterbox.embedding_identity != after.embedding_identity
    assert letterbox.manifest_shas == (letterbox.sha256,)  # other embeddings: nothing carried
    write_manifest(folder, after.data)

    graph = folder / "embedding.onnx"  # new graph bytes: one weight changed, manifest updated
    model = onnx.load(str(graph))
    init = model.graph.initializer[0]
    array = numpy_helper.to_array(init).copy()
    array.flat[0] += 1.0
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(model, str(graph))
    data = copy.deepcopy(after.data)
    data["files"]["embedding.onnx"] = {"sha256": sha256_file(graph), "bytes": graph.stat().st_size}
    write_manifest(folder, data)
    assert verify_package(folder).embedding_identity != after.embedding_identity


def test_legacy_head_records_still_apply_and_are_re_recorded(workspace, tmp_path: Path) -> None:
    db, settings = workspace.db, workspace.settings
    data_dir = Path(settings.data_dir)
    folder = copy_tiny_package(data_dir / "models")
    service = ErrorMapService(settings, "tiny")
    manifest = service.runtime.manifest
    first, result = labelled_head_on(db, settings, service, tmp_path / "first")

    # What an older version stored: the manifest sha256, in the head and in the cache keys.
    with db.write() as s:
        version = s.get(ModelVersion, result.model_version_id)
        assert version.file_sha256[EMBEDDING_MODEL] == manifest.embedding_identity
        version.file_sha256 = {**version.file_sha256, EMBEDDING_MODEL: manifest.sha256}
        legacy = dict(version.file_sha256)
    cache = EmbeddingCache.for_data_dir(data_dir)
    for ref in image_refs(db):
        new = cache.path(embedding_key(ref.content_hash, ref.frame, manifest.embedding_identity))
        new.rename(cache.path(embedding_key(ref.content_hash, ref.frame, manifest.sha256)))

    assert applies_to(legacy, manifest)
    assert not applies_to({EMBEDDING_MODEL: "0" * 64}, manifest)
    assert not applies_to({EMBEDDING_MODEL: verify_package(DEMO).sha256}, manifest)
    assert head_package(settings, legacy).sha256 == manifest.sha256

    # Calibrated before anything re-recorded the head (e.g. `model calibrate` right after the
    # upgrade): the new manifest supersedes the old sha256, so the old record still applies
    # and the old cache entries are still found.
    old_sha = manifest.sha256
    manifest = _rewrite_errormap(folder, hotspot_threshold=0.02)
    assert manifest.sha256 != old_sha and manifest.manifest_shas == (manifest.sha256, old_sha)
    assert manifest.data["supersedes"] == [old_sha]
    assert applies_to(legacy, manifest) and head_package(settings, legacy).sha256 == manifest.sha256
    service = ErrorMapService(settings, "tiny")

    import_synthetic(db, data_dir, tmp_path / "second", n=2, seed=12)
    with db.read() as s:
        new_ids = [
            i for sop, i in s.execute(select(Image.sop_instance_uid, Image.id)) if sop not in first
        ]
    embedded = embed_images(db, service, sorted(set(first.values()) | set(new_ids)))
    assert (embedded.cached, embedded.computed) == (len(first), len(new_ids))  # old entries read
    vectors = {i: embedded.vectors[i] for i in new_ids}
    assert predict_with_active_heads(db, data_dir, vectors, manifest) == len(new_ids)

    assert adopt_legacy_heads(db, manifest) == 1
    assert adopt_legacy_heads(db, manifest) == 0
    with db.read() as s:
        version = s.get(ModelVersion, result.model_version_id)
        assert version.file_sha256 == {**legacy, EMBEDDING_MODEL: manifest.embedding_identity}
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "model_version.embedding_identity")
        ).one()
        assert event.entity_id == version.id and event.before == {EMBEDDING_MODEL: old_sha}

    # Re-recorded, the head survives an in-place error-map rewrite of its package; the chain
    # of superseded manifests grows.
    calibrated = _rewrite_errormap(folder, abnormal_threshold=0.01)
    assert calibrated.sha256 != manifest.sha256
    assert calibrated.manifest_shas == (calibrated.sha256, old_sha, manifest.sha256)
    service = ErrorMapService(settings, "tiny")
    assert service.runtime.manifest.sha256 == calibrated.sha256
    import_synthetic(db, data_dir, tmp_path / "third", n=1, seed=13)
    summary = analyse_images(db, service, None)
    assert (summary.embedded, summary.embeddings_cached) == (1, len(first) + len(new_ids))
    with db.read() as s:
        by_head = s.scalars(
            select(Prediction.image_id).where(
                Prediction.model_version_id == result.model_version_id
            )
        ).all()
    assert len(set(by_head)) == len(first) + len(new_ids) + 1
