"""`model calibrate`: thresholds (and optionally a structure table) from the user's own NORMAL
studies, written to a user package in place or to a copy of a bundled one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.models import Image, ModelVersion, Prediction
from skelex_desktop.core.heads.versions import head_package
from skelex_desktop.core.inference.calibration import HOTSPOT_PERCENTILE
from skelex_desktop.core.inference.normalisation import ErrorNormaliser
from skelex_desktop.core.inference.package import read_manifest, verify_package, write_manifest
from skelex_desktop.core.inference.preprocess import to_model_u8
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.inference.reliability import CARRIED, map_caveat
from skelex_desktop.core.inference.service import ErrorMapService, MaeRuntime
from skelex_desktop.core.inference.trust import IMPORTED, TrustStore
from skelex_desktop.core.inference.user_calibration import (
    MIN_IMAGES,
    SOURCE,
    NotEnoughImages,
    ReadOnlyPackage,
    calibrate_on_normal_studies,
)
from skelex_desktop.core.ingest.pixels import read_frame
from skelex_desktop.core.progress import Cancelled, RecordingProgress
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.synth import generate_image
from skelex_desktop.core.synth.dataset import SynthConfig, generate_dataset
from tests.core.test_embeddings import import_synthetic, labelled_head_on
from tests.core.test_mae_helpers import copy_tiny_package

N_DICOM, N_PNG, SIZE = 12, 10, 128


@pytest.fixture(scope="module")
def normals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """22 normal SynthMSK images on disk: DICOM study folders, PNG files, and broken files."""
    import cv2

    root = tmp_path_factory.mktemp("normals")
    synth = generate_dataset(
        root / "dicom",
        SynthConfig(n=N_DICOM, seed=11, abnormal_fraction=0.0, fmt="dicom", size=SIZE, workers=1),
    )
    patients = sorted({f.relative_to(synth.out_dir).parts[0] for f in synth.files})
    pngs = []
    for i in range(N_PNG):
        image = generate_image(12, i, size=SIZE, abnormal=False)
        pngs.append(root / "png" / f"normal{i:02d}.png")
        pngs[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(pngs[-1]), image.monochrome2())
    broken = root / "broken"
    broken.mkdir()
    (broken / "cut.png").write_bytes(pngs[0].read_bytes()[:60])  # truncated PNG
    (broken / "notes.txt").write_text("not an image")
    (broken / "copy.png").write_bytes(pngs[1].read_bytes())  # same content as normal01.png
    return {
        "studies": [synth.out_dir / p for p in patients] + [root / "png"],
        "images": sorted(synth.files) + pngs,
        "broken": [broken],
    }


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKELEX_BUNDLED_MODELS", str(tmp_path / "bundled"))
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    return data


def _registry(data_dir: Path) -> Registry:
    return Registry.from_settings(Settings(data_dir=data_dir))


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _pixels(path: Path) -> np.ndarray:
    frame = read_frame(path)
    return frame.rgb if frame.rgb is not None else frame.values


def test_user_package_is_calibrated_in_place_and_agrees_with_the_runtime(
    data_dir: Path, normals: dict[str, list[Path]]
) -> None:
    folder = copy_tiny_package(data_dir / "models")
    old = read_manifest(folder)
    progress = RecordingProgress()
    result = calibrate_on_normal_studies(
        _registry(data_dir), "tiny", normals["studies"] + normals["broken"], progress=progress
    )
    assert result.images == N_DICOM + N_PNG and not result.copied and result.folder == folder
    skipped = {Path(s.path).name: s.reason for s in result.skipped}
    assert set(skipped) == {"cut.png", "notes.txt", "copy.png"}
    assert "not a DICOM or image file" in skipped["notes.txt"]
    assert "same content as" in skipped["copy.png"] and "normal01.png" in skipped["copy.png"]
    assert progress.done == progress.total == N_DICOM + N_PNG + 3

    manifest = verify_package(folder)  # every file still matches; the manifest is new
    assert manifest.sha256 != old.sha256 and manifest.name == "tiny"
    # written by the app: trusted without a manual step (and the old manifest still is)
    assert _registry(data_dir).verify("tiny").trust.startswith("calibrated 2")
    assert TrustStore.for_data_dir(data_dir).lookup(old.sha256) is not None
    errormap = manifest.errormap
    record = errormap["calibration"]
    assert record["source"] == SOURCE and record["images"] == N_DICOM + N_PNG
    assert record["specificity"] == 0.95 and record["sensitivity"] is None
    assert "not measurable" in record["sensitivity_note"]
    assert record["date"].endswith("+00:00") and record["structure_table"] is False
    assert len(record["files"]) == N_DICOM + N_PNG and record["skipped_files"] == 3
    assert record["calibrated_from"] == {"name": "tiny", "package_sha256": old.sha256}
    assert old.errormap["abnormal_threshold"] is None and old.errormap["hotspot_threshold"] is None
    assert result.before["abnormal_threshold"] is None
    assert result.after["abnormal_threshold"] == errormap["abnormal_threshold"] > 0
    assert "normalisation" not in errormap

    # the stored thresholds are what the package's own runtime gives on these images
    runtime = MaeRuntime(manifest)
    analysed = [runtime.analyse(_pixels(p)) for p in normals["images"]]
    scores = np.array([a.score for a in analysed])
    ordered = np.sort(scores)  # 22 images: 21 (0.955) at or below the cut, the highest above
    assert errormap["abnormal_threshold"] == pytest.approx((ordered[20] + ordered[21]) / 2)
    assert [a.abnormal for a in analysed].count(True) == 1
    assert record["specificity_on_these_images"] == pytest.approx(21 / 22)
    maps = [runtime.error_map(_pixels(p)) for p in normals["images"]]
    inside = np.concatenate([m.model_map[m.foreground] for m in maps])
    assert errormap["hotspot_threshold"] == pytest.approx(
        np.percentile(inside, HOTSPOT_PERCENTILE), rel=1e-6
    )


def test_too_few_or_no_usable_images_leave_the_manifest_untouched(
    data_dir: Path, normals: dict[str, list[Path]], capsys
) -> None:
    folder = copy_tiny_package(data_dir / "models")
    before = _snapshot(folder)
    few = normals["images"][: MIN_IMAGES - 1]
    with pytest.raises(NotEnoughImages, match=f"only {MIN_IMAGES - 1} usable image"):
        calibrate_on_normal_studies(_registry(data_dir), "tiny", few)
    assert _snapshot(folder) == before

    base = ["--data-dir", str(data_dir), "model", "calibrate", "tiny"]
    unusable = [normals["broken"][0] / "cut.png", normals["broken"][0] / "notes.txt"]
    assert main([*base, *map(str, unusable)]) == 2
    err = capsys.readouterr().err
    assert "no usable image" in err and f"at least {MIN_IMAGES} normal images" in err
    assert "cut.png" in err and "notes.txt: not a DICOM or image file" in err
    assert main([*base, str(data_dir / "missing")]) == 2
    assert "path does not exist" in capsys.readouterr().err
    assert _snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        {Path(n).parts[0] for n in before}
    )  # no temporary manifest left behind


def test_cancelling_leaves_the_manifest_untouched(
    data_dir: Path, normals: dict[str, list[Path]]
) -> None:
    folder = copy_tiny_package(data_dir / "models")
    before = _snapshot(folder)
    with pytest.raises(Cancelled):
        calibrate_on_normal_studies(
            _registry(data_dir), "tiny", normals["studies"], progress=RecordingProgress(3)
        )
    assert _snapshot(folder) == before


def test_bundled_package_is_refused_in_place_and_calibrated_as_a_copy(
    data_dir: Path, normals: dict[str, list[Path]], capsys
) -> None:
    bundled = copy_tiny_package(data_dir.parent / "bundled")
    original = _snapshot(bundled)
    studies = [str(p) for p in normals["studies"]]
    base = ["--data-dir", str(data_dir), "model", "calibrate", "tiny", *studies]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "bundled package" in err and "--as NEWNAME" in err and len(err.splitlines()) == 1
    with pytest.raises(ReadOnlyPackage):
        calibrate_on_normal_studies(_registry(data_dir), "tiny", normals["studies"])

    # a bundled package this version does not ship is refused until trusted explicitly
    assert main([*base, "--as", "tiny-site"]) == 1
    assert "model trust tiny" in capsys.readouterr().err
    assert not (data_dir / "models" / "tiny-site").exists()
    assert main(["--data-dir", str(data_dir), "model", "trust", "tiny"]) == 0
    capsys.readouterr()
    assert main([*base, "--as", "tiny-site", "--specificity", "0.9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    copy = data_dir / "models" / "tiny-site"
    assert out["copied"] is True and out["calibrated_from"] == "tiny"
    assert out["folder"] == str(copy) and out["images"] == N_DICOM + N_PNG
    assert out["before"]["abnormal_threshold"] is None
    assert out["after"]["abnormal_threshold"] > 0 and out["calibration"]["specificity"] == 0.9
    manifest = verify_package(copy)
    assert manifest.name == "tiny-site" and manifest.sha256 == out["after"]["package_sha256"]
    assert set(_snapshot(copy)) == set(original)
    assert {k: v for k, v in _snapshot(copy).items() if k != "manifest.json"} == {
        k: v for k, v in original.items() if k != "manifest.json"
    }
    assert _snapshot(bundled) == original  # the bundled package is untouched
    assert [p.name for p in (data_dir / "models").iterdir()] == ["tiny-site"]  # no build left
    assert _registry(data_dir).folder("tiny-site") == (copy, "user")
    assert _registry(data_dir).verify("tiny-site").trust.startswith("calibrated 2")

    for name in ("tiny-site", "tiny"):  # an existing name (user or bundled) is refused
        assert main([*base, "--as", name]) == 1
        assert "already exists" in capsys.readouterr().err
    assert main([*base, "--as", "../evil"]) == 1
    assert "invalid package name" in capsys.readouterr().err
    assert _snapshot(bundled) == original


def test_structure_table_is_declared_and_applied_by_the_runtime(
    data_dir: Path, normals: dict[str, list[Path]], capsys
) -> None:
    folder = copy_tiny_package(data_dir / "models")
    plain_runtime = MaeRuntime(read_manifest(folder))
    base = ["--data-dir", str(data_dir), "model", "calibrate", "tiny"]
    studies = [str(p) for p in normals["studies"]]
    assert main([*base, *studies, "--structure-table"]) == 0
    out = capsys.readouterr().out
    assert "structure table:    none -> declared (fitted on these images)" in out
    manifest = verify_package(folder)
    spec = manifest.errormap["normalisation"]
    table = ErrorNormaliser.from_json(spec)
    assert table is not None and spec["data"].startswith(SOURCE)
    assert manifest.errormap["calibration"]["structure_table"] is True

    runtime = MaeRuntime(manifest)
    assert runtime.normaliser is not None
    pixels = _pixels(normals["images"][0])
    plain = plain_runtime.error_map(pixels).model_map
    gray = to_model_u8(pixels, manifest.preprocessing)[0][..., 0]
    normalised = runtime.error_map(pixels).model_map
    assert np.array_equal(normalised, table.apply(plain, gray))
    assert not np.allclose(normalised, plain)
    maps = [runtime.error_map(_pixels(p)) for p in normals["images"]]
    inside = np.concatenate([m.model_map[m.foreground] for m in maps])
    assert manifest.errormap["hotspot_threshold"] == pytest.approx(
        np.percentile(inside, HOTSPOT_PERCENTILE), rel=1e-6
    )

    # calibrating again without the option removes the table: plain maps, as before
    assert main([*base, *studies]) == 0
    out = capsys.readouterr().out
    assert "structure table:    declared -> none" in out and "was removed" in out
    manifest = verify_package(folder)
    assert "normalisation" not in manifest.errormap
    assert np.array_equal(MaeRuntime(manifest).error_map(pixels).model_map, plain)


def test_cli_text_output(data_dir: Path, normals: dict[str, list[Path]], capsys) -> None:
    copy_tiny_package(data_dir / "models")
    argv = ["--data-dir", str(data_dir), "model", "calibrate", "tiny"]
    argv += [*map(str, normals["studies"]), *map(str, normals["broken"])]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"on {N_DICOM + N_PNG} normal image(s) from {N_DICOM + N_PNG} file(s)" in out
    assert "skipped 3 path(s):" in out and "notes.txt: not a DICOM or image file" in out
    assert "abnormal threshold: none -> " in out and "hotspot threshold:  none -> " in out
    assert "sensitivity not measurable" in out and "sha256 changed" in out
    with pytest.raises(SystemExit) as exit_info:
        main([*argv[:5], "x", "--specificity", "1.5"])
    assert exit_info.value.code == 2
    assert "not between 0 and 1" in capsys.readouterr().err


def test_heads_and_cached_embeddings_survive_an_in_place_calibration(
    workspace, data_dir: Path, normals: dict[str, list[Path]], tmp_path: Path
) -> None:
    db, settings = workspace.db, workspace.settings
    copy_tiny_package(data_dir / "models")
    service = ErrorMapService(settings, "tiny")
    before = service.runtime.manifest
    labelled, head = labelled_head_on(db, settings, service, tmp_path / "labelled")

    result = calibrate_on_normal_studies(_registry(data_dir), "tiny", normals["studies"])
    assert not result.copied and any("still apply" in note for note in result.notes)
    after = verify_package(result.folder)
    assert after.sha256 != before.sha256  # the error map changed ...
    assert after.embedding_identity == before.embedding_identity  # ... the embeddings did not

    service = ErrorMapService(settings, "tiny")
    assert service.runtime.manifest.sha256 == after.sha256
    import_synthetic(db, data_dir, tmp_path / "later", n=2, seed=12)
    with db.read() as s:
        later = [
            i
            for sop, i in s.execute(select(Image.sop_instance_uid, Image.id))
            if sop not in labelled
        ]
    summary = analyse_images(db, service, None)  # old embeddings come from the cache
    assert (summary.embedded, summary.embeddings_cached) == (len(later), len(labelled))
    assert summary.head_predictions == len(later)
    with db.read() as s:
        version = s.get(ModelVersion, head.model_version_id)
        assert version.active
        rows = s.scalars(
            select(Prediction).where(
                Prediction.model_version_id == version.id, Prediction.image_id.in_(later)
            )
        ).all()
        state = next(st for st in task_states(s, later[0]) if st.name == "abnormal")
    whole = [r for r in rows if (r.details or {}).get("method") == "task head"]
    assert len(whole) == len(later) and state.method.startswith("task head")
    package = head_package(settings, version.file_sha256)
    assert package is not None and package.sha256 == after.sha256


def test_synthmsk_measures_and_the_weak_map_caveat_survive_a_threshold_calibration(
    data_dir: Path, normals: dict[str, list[Path]]
) -> None:
    """Thresholds alone leave the map as it was, so its SynthMSK measures (and the viewer's
    caveat) stay in the new record; a structure table changes the map, so they go."""
    folder = copy_tiny_package(data_dir / "models")
    data = read_manifest(folder).data
    synth = {"data": "SynthMSK seed 1, 20 images", "image_auroc": 0.55}
    synth["finding_pixel_auroc_inside_bone"] = 0.61
    data["errormap"] = {**data["errormap"], "calibration": synth}
    # as `model import --calibrate-synth` writes it: recorded as trusted in the data dir
    write_manifest(folder, data, TrustStore.for_data_dir(data_dir).recorder(IMPORTED))
    assert map_caveat(verify_package(folder).errormap) is not None

    calibrate_on_normal_studies(_registry(data_dir), "tiny", normals["studies"])
    record = verify_package(folder).errormap["calibration"]
    assert record["source"] == SOURCE and record[CARRIED] == synth
    caveat = map_caveat(verify_package(folder).errormap)
    assert caveat is not None and "AUROC 0.55" in caveat and "AUROC 0.61" in caveat

    calibrate_on_normal_studies(_registry(data_dir), "tiny", normals["studies"])
    assert verify_package(folder).errormap["calibration"][CARRIED] == synth  # carried again

    calibrate_on_normal_studies(
        _registry(data_dir), "tiny", normals["studies"], structure_table=True
    )
    assert CARRIED not in verify_package(folder).errormap["calibration"]
    assert map_caveat(verify_package(folder).errormap) is None
