"""Trusted model packages (issue #16, finding 1): a package is identified by the sha256 of its
whole manifest; the app loads only the manifests it ships or wrote itself, or that a user
trusted explicitly (`model trust NAME`, audited). Real packages, real ONNX sessions, the real
CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import AuditEvent, ModelVersion, Prediction
from skelex_desktop.core.heads.versions import EMBEDDING_MODEL, head_package
from skelex_desktop.core.inference.package import MANIFEST, PackageError, sha256_bytes
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.inference.trust import (
    BUNDLED_MANIFESTS,
    IMPORTED,
    TRUST_FILE,
    TrustStore,
    UntrustedPackage,
    outline,
)
from skelex_desktop.core.settings import Settings
from tests.core.test_embeddings import import_synthetic
from tests.core.test_mae_helpers import copy_tiny_package, tiny_package_root, write_png

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "skelex-demo"


def cli(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "--reader", "dr.trust", *args])


def test_the_app_knows_the_digest_of_every_bundled_manifest_as_shipped() -> None:
    shipped = {
        folder.name: sha256_bytes((folder / MANIFEST).read_bytes())
        for folder in sorted((ROOT / "models").iterdir())
        if (folder / MANIFEST).is_file()
    }
    assert shipped == BUNDLED_MANIFESTS, (
        "a bundled package's manifest changed: put its new sha256 into BUNDLED_MANIFESTS in "
        f"skelex_desktop/core/inference/trust.py (docs/MODEL.md): {shipped}"
    )


def test_bundled_demo_works_out_of_the_box(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"  # a first start: no trust records at all
    assert cli(data, "model", "verify", "skelex-demo") == 0
    assert "manifest trusted (bundled)" in capsys.readouterr().out
    assert cli(data, "model", "list", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["verified"], row["trust"]) == ("skelex-demo", True, "bundled")
    png = write_png(tmp_path / "x.png", rows=96, cols=80)
    assert cli(data, "errormap", str(png), "--out", str(tmp_path / "m.npy")) == 0
    assert np.load(tmp_path / "m.npy").shape == (96, 80)
    assert not (data / TRUST_FILE).exists()  # nothing had to be recorded


def _user_copy_of_demo(data: Path) -> Path:
    """What the finding did: the demo package copied into the user's models folder."""
    target = data / "models" / "skelex-demo"
    shutil.copytree(DEMO, target)
    return target


def test_threshold_tampering_is_refused(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    copy = _user_copy_of_demo(data)
    assert cli(data, "model", "verify", "skelex-demo") == 0  # an untouched copy: same digest
    capsys.readouterr()

    path = copy / MANIFEST
    text = path.read_text(encoding="utf-8")
    cut = json.loads(text)["errormap"]["abnormal_threshold"]
    old = json.dumps(cut)
    new = "0.5" if cut != 0.5 else "0.25"  # a value that survives JSON's float round trip
    assert text.count(f'"abnormal_threshold": {old}') == 1
    path.write_text(text.replace(f'"abnormal_threshold": {old}', f'"abnormal_threshold": {new}'))

    assert cli(data, "model", "verify", "skelex-demo") == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "model package 'skelex-demo' (user" in err
    assert f"errormap/abnormal_threshold {old} -> {new}" in err
    assert "bundled 'skelex-demo' as shipped" in err
    assert "skelex-desktop model trust skelex-demo" in err and "--replace" in err
    png = write_png(tmp_path / "x.png")
    assert cli(data, "errormap", str(png), "--out", str(tmp_path / "m.npy")) == 1
    assert "errormap/abnormal_threshold" in capsys.readouterr().err
    assert not (tmp_path / "m.npy").exists()
    assert cli(data, "model", "list", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verified"] is False and row["trusted"] is False
    assert "abnormal_threshold" in row["problem"]


def test_head_auroc_tampering_is_refused_before_any_head_predicts(
    workspace, tmp_path: Path, capsys
) -> None:
    db, data = workspace.db, Path(workspace.settings.data_dir)
    copy = _user_copy_of_demo(data)
    path = copy / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    auroc = manifest["heads"]["tasks"]["abnormal"]["metrics"]["auroc"]
    assert auroc < 0.70  # a chance-level head: Enter does not accept its suggestions
    text = path.read_text(encoding="utf-8")
    forged = text.replace(f'"auroc": {auroc},', f'"auroc": {auroc + 0.5},', 1)
    assert forged != text
    path.write_text(forged, encoding="utf-8")
    import_synthetic(db, data, tmp_path / "synth", n=2, seed=3)

    assert cli(data, "model", "verify", "skelex-demo") == 1
    err = capsys.readouterr().err
    assert f"heads/tasks/abnormal/metrics/auroc {auroc} -> {auroc + 0.5}" in err
    assert cli(data, "analyze", "--all") == 1
    assert "model trust skelex-demo" in capsys.readouterr().err
    with db.read() as s:
        assert s.scalars(select(Prediction)).all() == []
        assert s.scalars(select(ModelVersion)).all() == []
    # the copy shadows the bundled package: nothing of it is read, nor chosen for a head
    with pytest.raises(UntrustedPackage, match="auroc"):
        Registry.from_settings(workspace.settings).read("skelex-demo")
    shipped = Registry.from_settings(Settings(data_dir=tmp_path / "fresh")).read("skelex-demo")
    assert shipped.folder == DEMO
    assert head_package(workspace.settings, {EMBEDDING_MODEL: shipped.embedding_identity}) is None


def test_swapped_graph_with_an_updated_hash_is_refused_until_trusted(
    tmp_path: Path, capsys
) -> None:
    from skelex_desktop.core.training.package_writer import ImportOptions, import_model
    from tests.core.test_mae_helpers import tiny_model

    data = tmp_path / "data"
    folder = copy_tiny_package(data / "models")
    settings = Settings(data_dir=data, inference_threads=1)
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    before = ErrorMapService(settings, "tiny").analyse_pixels(pixels).error_map

    import_model(tiny_model(seed=1), tmp_path / "other", ImportOptions(name="other"))
    graph = tmp_path / "other" / "other" / "reconstruction.onnx"
    shutil.copyfile(graph, folder / "reconstruction.onnx")
    manifest = json.loads((folder / MANIFEST).read_text())
    entry = {"sha256": sha256_bytes(graph.read_bytes()), "bytes": graph.stat().st_size}
    manifest["files"]["reconstruction.onnx"] = entry
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))

    assert cli(data, "model", "verify", "tiny") == 1
    err = capsys.readouterr().err
    assert "files/reconstruction.onnx/sha256 changed" in err
    assert "manifest imported 2" in err and "model trust tiny" in err
    service = ErrorMapService(settings, "tiny")
    with pytest.raises(UntrustedPackage, match="reconstruction.onnx"):
        service.analyse_pixels(pixels)
    assert service._runtime is None  # nothing was loaded

    assert cli(data, "model", "trust", "tiny") == 0
    assert "trusted tiny: manifest sha256" in capsys.readouterr().out
    assert cli(data, "model", "verify", "tiny") == 0
    assert "manifest trusted (trusted by dr.trust 2" in capsys.readouterr().out
    after = ErrorMapService(settings, "tiny").analyse_pixels(pixels).error_map
    assert not np.array_equal(before, after)  # the swapped graph is the one that runs now

    from skelex_desktop.core.db.engine import Database

    db = Database(settings.database_url)
    try:
        with db.read() as s:
            (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "model.trust"))
            assert event.who == "dr.trust" and event.entity == "model_package"
            assert event.after["manifest_sha256"] == sha256_bytes((folder / MANIFEST).read_bytes())
            assert event.after["name"] == "tiny" and event.before["trusted"] is False
            assert "files/reconstruction.onnx/sha256 changed" in event.before["differences"]
        assert cli(data, "model", "trust", "tiny") == 0  # already trusted: nothing written
        assert "already trusted" in capsys.readouterr().out
        with db.read() as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.action == "model.trust"))
            assert len(events.all()) == 1
    finally:
        db.dispose()


def test_a_package_from_an_older_version_is_refused_until_trusted(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_package_root() / "tiny", data / "models" / "tiny")  # no record
    assert cli(data, "model", "verify", "tiny") == 1
    err = capsys.readouterr().err
    assert "no manifest of that name was recorded" in err
    assert "imported by a version before trust records" in err
    assert "`skelex-desktop model trust tiny`" in err
    assert cli(data, "model", "list") == 0
    assert "REFUSED: model package 'tiny'" in capsys.readouterr().out
    assert cli(data, "model", "trust", "tiny", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["new"] is True and out["how"] == "trusted" and out["by"] == "dr.trust"
    assert cli(data, "model", "verify", "tiny") == 0


def test_import_and_calibration_by_the_app_need_no_manual_step(tmp_path: Path, capsys) -> None:
    from skelex_desktop.core.training.checkpoint import save_checkpoint
    from tests.core.test_mae_helpers import tiny_model

    data = tmp_path / "data"
    save_checkpoint(tiny_model(seed=2), tmp_path / "hf")
    assert cli(data, "model", "import", str(tmp_path / "hf"), "--name", "mine") == 0
    capsys.readouterr()
    assert cli(data, "model", "verify", "mine") == 0
    assert "manifest trusted (imported 2" in capsys.readouterr().out

    # written elsewhere (--models-dir), then moved in: the digest is what is recorded
    outside = tmp_path / "elsewhere"
    args = ["model", "import", str(tmp_path / "hf"), "--name", "moved", "--models-dir"]
    assert cli(data, *args, str(outside)) == 0
    shutil.move(outside / "moved", data / "models" / "moved")
    assert cli(data, "model", "verify", "moved") == 0
    capsys.readouterr()

    # a package imported into another data dir is not trusted here
    other = tmp_path / "other-data"
    assert cli(other, "model", "import", str(tmp_path / "hf"), "--name", "theirs") == 0
    shutil.move(other / "models" / "theirs", data / "models" / "theirs")
    capsys.readouterr()
    assert cli(data, "model", "verify", "theirs") == 1
    assert "model trust theirs" in capsys.readouterr().err


def test_head_package_skips_an_untrusted_manifest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = copy_tiny_package(data / "models")
    settings = Settings(data_dir=data, active_model="tiny")
    manifest = Registry.from_settings(settings).manifest("tiny")
    record = {EMBEDDING_MODEL: manifest.embedding_identity}
    assert head_package(settings, record).sha256 == manifest.sha256
    raw = json.loads((folder / MANIFEST).read_text())
    raw["version"] = "9.9"  # the embeddings are the same; the manifest is not trusted
    (folder / MANIFEST).write_text(json.dumps(raw))
    assert head_package(settings, record) is None


def test_a_damaged_trust_store_refuses_user_packages_but_not_bundled_ones(
    tmp_path: Path, capsys
) -> None:
    data = tmp_path / "data"
    copy_tiny_package(data / "models")
    (data / TRUST_FILE).write_text("{not json")
    assert cli(data, "model", "verify", "tiny") == 1
    err = capsys.readouterr().err
    assert f"{data / TRUST_FILE} is damaged" in err and "model trust NAME" in err
    assert cli(data, "model", "verify", "skelex-demo") == 0
    with pytest.raises(PackageError, match="is damaged"):
        TrustStore.for_data_dir(data).record_file(data / "models" / "tiny", IMPORTED)


def test_the_store_keeps_every_digest_and_the_outline_of_the_newest_per_name(
    tmp_path: Path,
) -> None:
    store = TrustStore.for_data_dir(tmp_path)
    first = json.dumps({"name": "p", "errormap": {"abnormal_threshold": 0.5}}).encode()
    second = json.dumps({"name": "p", "errormap": {"abnormal_threshold": 0.6}}).encode()
    other = json.dumps({"name": "q", "files": {"a.onnx": {"sha256": "f" * 64}}}).encode()
    a = store.record(first, IMPORTED)
    assert store.record(first, "calibrated") == a  # already recorded: unchanged
    store.record(second, "calibrated")
    store.record(other, IMPORTED)
    records = {r.sha256: r for r in store.records()}
    assert set(records) == {sha256_bytes(first), sha256_bytes(second), sha256_bytes(other)}
    assert records[sha256_bytes(first)].outline is None  # superseded under its name
    assert store.latest("p").outline == {"name": '"p"', "errormap/abnormal_threshold": "0.6"}
    assert outline(json.loads(other))["files/a.onnx/sha256"].startswith("#")
    assert store.lookup(sha256_bytes(b"{}")) is None
    assert store.lookup(BUNDLED_MANIFESTS["skelex-demo"]).how == "bundled"
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed


def test_model_trust_has_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "trust", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: skelex-desktop model trust" in out and "audit" in out
