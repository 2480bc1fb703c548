"""Heads bundled with the demo package: suggestions from the first analysis, a user's head for
a task wins over the bundled one, damaged or replaced head files are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.models import Image, ModelVersion, Prediction, Task
from skelex_desktop.core.heads.bundled import (
    declared_heads,
    load_bundled_head,
    predict_with_bundled_heads,
)
from skelex_desktop.core.heads.training_job import train_head
from skelex_desktop.core.inference.package import PackageError, read_manifest, verify_package
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.resources import bundled_models_dir
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.review.labels import confirm_label
from tests.core.test_embeddings import import_synthetic

DEMO = bundled_models_dir() / "skelex-demo"
TASKS = {"abnormal", "fracture", "implant", "tumour_category", "kl_grade"}


def _heads_of(db, image_id: int) -> dict[str, str]:  # noqa: ANN001 - Database
    """Task -> the `details.head` of the prediction task_states shows."""
    with db.read() as s:
        shown = {st.name: st.prediction_id for st in task_states(s, image_id)}
        return {
            name: s.get(Prediction, pid).details.get("head", "")
            for name, pid in shown.items()
            if pid is not None
        }


def test_demo_package_declares_verified_heads() -> None:
    manifest = verify_package(DEMO)  # every file, heads included, passes its sha256
    heads = {h.task: h for h in declared_heads(manifest)}
    assert set(heads) == TASKS and heads["kl_grade"].body_parts == ("KNEE",)
    for head in heads.values():
        assert manifest.files[head.file]["sha256"] == head.sha256
        weights = load_bundled_head(manifest, head)
        assert [t.name for t in weights.tasks] == [head.task]
        metrics = manifest.data["heads"]["tasks"][head.task]["metrics"]
        assert {"auroc", "balanced_accuracy", "f1_macro", "ece"} <= set(metrics)
    assert "## Task heads" in (DEMO / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file()) <= 30 * 2**20


def test_first_analysis_shows_bundled_heads_and_a_user_head_wins(workspace, tmp_path: Path):
    db, settings = workspace.db, workspace.settings
    settings.inference_threads = 2
    service = ErrorMapService(settings, "skelex-demo")
    import_synthetic(db, settings.data_dir, tmp_path / "first", n=10, seed=21)
    summary = analyse_images(db, service, None)
    with db.read() as s:
        parts = dict(s.execute(select(Image.id, Image.body_part)).all())
        version = s.scalars(
            select(ModelVersion).where(ModelVersion.name == "skelex-demo-heads")
        ).one()
        assert version.active and version.version == service.runtime.manifest.version
        assert version.file_sha256["heads/fracture.npz"] and "head.npz" not in version.file_sha256
        identity = service.runtime.manifest.embedding_identity
        assert version.file_sha256["embedding_model"] == identity
    knees = sum(p.upper() == "KNEE" for p in parts.values())
    assert summary.head_predictions == 4 * len(parts) + knees
    label = f"skelex-demo-heads {version.version}"
    for image_id, part in parts.items():
        shown = _heads_of(db, image_id)
        expected = TASKS if part.upper() == "KNEE" else TASKS - {"kl_grade"}
        assert {t for t, head in shown.items() if head == label} == expected
    assert analyse_images(db, service, None).head_predictions == 0  # nothing twice

    ids = sorted(parts)
    for k, image_id in enumerate(ids):  # a user labels fracture and trains a head
        confirm_label(db, image_id, "fracture", k % 2, "dr.test")
    train_head(db, settings, ["fracture"], folds=2, seed=0, model="skelex-demo")
    assert _heads_of(db, ids[0])["fracture"] == "head-fracture 1"
    assert _heads_of(db, ids[0])["implant"] == label

    import_synthetic(db, settings.data_dir, tmp_path / "second", n=2, seed=22)
    with db.read() as s:
        new = sorted(set(s.scalars(select(Image.id))) - set(ids))
    analyse_images(db, service, new)
    for image_id in new:
        shown = _heads_of(db, image_id)
        assert shown["fracture"] == "head-fracture 1" and shown["implant"] == label
    with db.read() as s:
        fracture = s.scalar(select(Task.id).where(Task.name == "fracture"))
        bundled_fracture = s.scalars(
            select(Prediction.id).where(
                Prediction.model_version_id == version.id,
                Prediction.image_id.in_(new),
                Prediction.task_id == fracture,
            )
        ).all()
    assert bundled_fracture == []  # the user's head covers the task


def _copy_package(target: Path, with_graphs: bool = False) -> Path:
    """The demo package copied to `target` (only manifest and heads unless `with_graphs`)."""
    if with_graphs:
        shutil.copytree(DEMO, target)
    else:
        target.mkdir(parents=True)
        shutil.copy(DEMO / "manifest.json", target / "manifest.json")
        shutil.copytree(DEMO / "heads", target / "heads")
    return target


def test_damaged_or_replaced_heads_are_refused(tmp_path: Path, settings) -> None:
    folder = _copy_package(tmp_path / "pkg")
    head = folder / "heads" / "fracture.npz"
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0xFF
    head.write_bytes(bytes(data))
    manifest = read_manifest(folder)
    fracture = next(h for h in declared_heads(manifest) if h.task == "fracture")
    with pytest.raises(PackageError, match="heads/fracture.npz fails its sha256 check"):
        load_bundled_head(manifest, fracture)

    raw = json.loads((folder / "manifest.json").read_text())
    raw["heads"]["tasks"]["implant"]["sha256"] = "0" * 64
    raw["heads"]["embedding_sha256"] = "1" * 64
    (folder / "manifest.json").write_text(json.dumps(raw))
    manifest = read_manifest(folder)
    implant = next(h for h in declared_heads(manifest) if h.task == "implant")
    with pytest.raises(PackageError, match="sha256 of its heads entry"):
        load_bundled_head(manifest, implant)
    abnormal = next(h for h in declared_heads(manifest) if h.task == "abnormal")
    with pytest.raises(PackageError, match="trained on another embedding.onnx"):
        load_bundled_head(manifest, abnormal)

    user = _copy_package(settings.data_dir / "models" / "skelex-demo", with_graphs=True)
    (user / "heads" / "kl_grade.npz").write_bytes(b"not a head")
    with pytest.raises(PackageError, match="heads/kl_grade.npz is 10 bytes"):
        ErrorMapService(settings, "skelex-demo").runtime  # noqa: B018 - loads the package


def test_packages_without_heads_predict_nothing(tmp_path: Path, db) -> None:
    folder = _copy_package(tmp_path / "plain")
    raw = json.loads((folder / "manifest.json").read_text())
    del raw["heads"]
    (folder / "manifest.json").write_text(json.dumps(raw))
    manifest = read_manifest(folder)
    assert declared_heads(manifest) == []
    assert predict_with_bundled_heads(db, manifest, {1: [0.0] * 192}) == 0


def test_bundled_heads_check_the_embedding_identity_they_record(tmp_path: Path) -> None:
    folder = _copy_package(tmp_path / "pkg")
    raw = json.loads((folder / "manifest.json").read_text())
    manifest = read_manifest(folder)
    assert raw["heads"]["embedding_sha256"] == manifest.files["embedding.onnx"]["sha256"]

    def load(data: dict) -> object:
        (folder / "manifest.json").write_text(json.dumps(data))
        changed = read_manifest(folder)
        abnormal = next(h for h in declared_heads(changed) if h.task == "abnormal")
        return load_bundled_head(changed, abnormal)

    raw["heads"]["embedding_identity"] = manifest.embedding_identity
    raw["errormap"]["abnormal_threshold"] = 0.5  # a calibration keeps them
    assert load(raw).tasks
    raw["preprocessing"]["resize"] = "letterbox"  # same graph, other model input
    with pytest.raises(PackageError, match="trained on other embeddings"):
        load(raw)
    del raw["heads"]["embedding_identity"]  # not recorded: only the graph is checked
    assert load(raw).tasks
