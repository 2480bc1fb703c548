"""SynthMSK: determinism, ground-truth consistency, DICOM/PNG output, balance, cancellation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from skelex_desktop.core.progress import Cancelled, RecordingProgress
from skelex_desktop.core.synth import (
    REGIONS,
    SynthConfig,
    generate_dataset,
    generate_image,
    make_plan,
)

SIZE = 256
CR_REQUIRED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "Laterality",
    "BodyPartExamined",
    "ViewPosition",
    "Manufacturer",
    "InstanceNumber",
    "PatientOrientation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelData",
    "SOPClassUID",
    "SOPInstanceUID",
    "WindowCenter",
    "WindowWidth",
    "ImageType",
)
DX_REQUIRED = CR_REQUIRED + (
    "PresentationIntentType",
    "DetectorType",
    "ImagerPixelSpacing",
    "ImageLaterality",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
    "PresentationLUTShape",
    "AnatomicRegionSequence",
    "RescaleIntercept",
    "RescaleSlope",
    "LossyImageCompression",
    "BurnedInAnnotation",
)


@pytest.fixture(scope="module")
def dicom_set(tmp_path_factory) -> tuple[Path, SynthConfig]:
    out = tmp_path_factory.mktemp("dcm")
    cfg = SynthConfig(n=24, seed=5, abnormal_fraction=0.5, fmt="dicom", size=SIZE, workers=1)
    generate_dataset(out, cfg)
    return out, cfg


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_same_seed_same_pixels_and_different_seed_differs() -> None:
    a = generate_image(3, 7, size=SIZE)
    b = generate_image(3, 7, size=SIZE)
    c = generate_image(4, 7, size=SIZE)
    assert a.pixels.dtype == np.uint16 and a.pixels.shape == (SIZE, SIZE)
    assert np.array_equal(a.pixels, b.pixels)
    assert np.array_equal(a.bone_mask, b.bone_mask)
    assert a.labels == b.labels
    assert not np.array_equal(a.pixels, c.pixels)


def test_same_seed_gives_identical_dicom_bytes(tmp_path: Path) -> None:
    cfg = SynthConfig(n=4, seed=9, fmt="dicom", size=SIZE, workers=1)
    ra = generate_dataset(tmp_path / "a", cfg)
    rb = generate_dataset(tmp_path / "b", cfg)
    rel_a = [p.relative_to(tmp_path / "a") for p in ra.files]
    assert rel_a == [p.relative_to(tmp_path / "b") for p in rb.files]
    for pa, pb in zip(ra.files, rb.files, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert ra.ground_truth_csv.read_bytes() == rb.ground_truth_csv.read_bytes()


def test_parallel_output_equals_serial(tmp_path: Path) -> None:
    base = dict(n=4, seed=11, fmt="dicom", size=SIZE)
    serial = generate_dataset(tmp_path / "s", SynthConfig(**base, workers=1))
    par = generate_dataset(tmp_path / "p", SynthConfig(**base, workers=2))
    for ps, pp in zip(serial.files, par.files, strict=True):
        assert ps.read_bytes() == pp.read_bytes()


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("finding", ["fracture", "lytic_lesion", "benign_lesion", "implant"])
def test_masks_are_consistent_with_labels(region: str, finding: str) -> None:
    img = generate_image(21, REGIONS.index(region), size=SIZE, region=region, finding=finding)
    lab = img.labels
    assert lab["abnormal"] == 1 and img.findings
    assert (lab["kl_grade"] is not None) == (region == "knee")
    assert lab["implant"] == int(any(f.type == "implant" for f in img.findings))
    assert lab["fracture"] == int(any(f.type == "fracture" for f in img.findings))
    assert lab["anatomical_location"] == img.findings[0].location
    for f in img.findings:
        assert f.mask.shape == (SIZE, SIZE) and f.mask.any()
        x0, y0, x1, y1 = f.box
        ys, xs = np.nonzero(f.mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
        if f.type in ("lytic_lesion", "benign_lesion"):
            assert not (f.mask & ~img.bone_mask).any(), "lesion outside bone"
            assert lab["tumour_category"] in ("malignant", "intermediate", "benign")
        if f.type == "fracture":
            assert (f.mask & img.bone_mask).any()
            outside = (f.mask & ~f.host_mask).astype(np.uint8)
            n_parts, _ = cv2.connectedComponents(outside, connectivity=8)
            assert n_parts - 1 >= 2, "fracture line does not cross the bone"
    if finding != "lytic_lesion" and finding != "benign_lesion":
        assert lab["tumour_category"] == "none"


def test_knee_osteoarthritis_grades() -> None:
    for i in range(6):
        img = generate_image(2, i, size=SIZE, region="knee", finding="osteoarthritis")
        assert img.labels["kl_grade"] in (2, 3, 4)
        assert [f.type for f in img.findings] == ["osteoarthritis"]
        normal = generate_image(2, i, size=SIZE, region="knee", abnormal=False)
        assert normal.labels["kl_grade"] in (0, 1) and normal.labels["abnormal"] == 0
    hand = generate_image(2, 0, size=SIZE, region="hand", abnormal=False)
    assert hand.labels["kl_grade"] is None and not hand.findings
    with pytest.raises(ValueError):
        generate_image(2, 0, size=SIZE, region="hand", finding="osteoarthritis")


def test_monochrome1_has_dark_bone() -> None:
    m1 = generate_image(8, 1, size=SIZE, region="knee", photometric="MONOCHROME1")
    m2 = generate_image(8, 1, size=SIZE, region="knee", photometric="MONOCHROME2")
    bone, body = m1.bone_mask, ~m1.bone_mask
    assert m1.pixels[bone].mean() < m1.pixels[body].mean()
    assert m2.pixels[bone].mean() > m2.pixels[body].mean()
    assert np.array_equal(m1.monochrome2(), m2.pixels)


def test_dicom_attributes_and_pixels(dicom_set) -> None:
    out, cfg = dicom_set
    rows = _read_csv(out / "ground_truth.csv")
    assert len(rows) == cfg.n
    for k, row in enumerate(rows):
        ds = pydicom.dcmread(out / row["file"])
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == row["sop_uid"]
        required = DX_REQUIRED if ds.Modality == "DX" else CR_REQUIRED
        missing = [kw for kw in required if kw not in ds]
        assert not missing, missing
        if ds.Modality == "DX":
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"
            assert ds.PresentationIntentType == "FOR PRESENTATION"
        else:
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1"
        assert ds.BitsAllocated == 16 and ds.BitsStored in (12, 14)
        assert ds.HighBit == ds.BitsStored - 1 and ds.PixelRepresentation == 0
        assert ds.BodyPartExamined in ("HAND", "WRIST", "FOREARM", "KNEE", "ANKLE", "FOOT")
        assert ds.ViewPosition in ("AP", "PA", "LAT") and ds.ImageLaterality in ("L", "R")
        assert "PixelSpacing" in ds or "ImagerPixelSpacing" in ds
        assert ds.StudyInstanceUID == row["study_uid"] and ds.PatientID == row["patient_id"]
        plan = make_plan(cfg)[k]
        img = generate_image(
            cfg.seed,
            k,
            size=cfg.size,
            region=plan.region,
            view=plan.view,
            laterality=plan.laterality,
            abnormal=plan.abnormal,
        )
        assert np.array_equal(ds.pixel_array, img.pixels)
        assert ds.PhotometricInterpretation == img.meta["photometric"]
        if k >= 6:
            break


def test_ground_truth_masks_and_json(dicom_set) -> None:
    out, _ = dicom_set
    rows = _read_csv(out / "ground_truth.csv")
    boxes = {b["file"]: b for b in json.loads((out / "findings.json").read_text())["images"]}
    for row in rows:
        bone = cv2.imread(str(out / row["bone_mask"]), cv2.IMREAD_UNCHANGED)
        assert bone.dtype == np.uint8 and bone.shape == (SIZE, SIZE)
        assert set(np.unique(bone)) <= {0, 255}
        masks = [m for m in row["masks"].split(";") if m]
        assert len(masks) == len(boxes[row["file"]]["findings"])
        assert (row["implant"] == "1") == any("_implant" in m for m in masks)
        assert (row["abnormal"] == "1") == bool(masks)
        assert (row["kl_grade"] != "") == (row["region"] == "knee")
        for m, f in zip(masks, boxes[row["file"]]["findings"], strict=True):
            arr = cv2.imread(str(out / m), cv2.IMREAD_UNCHANGED)
            ys, xs = np.nonzero(arr)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == f["box"]


def test_exact_class_balance_and_studies_per_patient(dicom_set) -> None:
    out, cfg = dicom_set
    rows = _read_csv(out / "ground_truth.csv")
    assert sum(r["abnormal"] == "1" for r in rows) == round(cfg.n * cfg.abnormal_fraction)
    studies: dict[str, set[str]] = {}
    for r in rows:
        studies.setdefault(r["patient_id"], set()).add(r["study_uid"])
    assert any(len(s) >= 2 for s in studies.values())
    assert len(studies) < len(rows)
    plan = make_plan(SynthConfig(n=37, abnormal_fraction=0.3))
    assert sum(p.abnormal for p in plan) == round(37 * 0.3)


def test_png_output_and_sidecar(tmp_path: Path) -> None:
    cfg = SynthConfig(n=6, seed=1, fmt="png", size=SIZE, workers=1)
    res = generate_dataset(tmp_path, cfg)
    side = _read_csv(tmp_path / "skelex_sidecar.csv")
    gt = _read_csv(res.ground_truth_csv)
    assert [r["file"] for r in side] == [r["file"] for r in gt]
    for r in side:
        parts = Path(r["file"]).parts
        assert parts[0] == r["patient_id"] and parts[1] == r["study_uid"]
        arr = cv2.imread(str(tmp_path / r["file"]), cv2.IMREAD_UNCHANGED)
        assert arr.dtype == np.uint16 and arr.shape == (SIZE, SIZE)
        assert float(r["pixel_spacing_mm"]) > 0 and r["laterality"] in ("L", "R")
        assert r["patient_name"].count("^") == 2 and len(r["birth_date"]) == 8
    first = generate_image(
        1,
        0,
        size=SIZE,
        region=gt[0]["region"],
        view=gt[0]["view"],
        laterality=gt[0]["laterality"],
        abnormal=gt[0]["abnormal"] == "1",
    )
    png = cv2.imread(str(tmp_path / gt[0]["file"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(png, first.monochrome2())


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_raises_and_leaves_no_tmp(tmp_path: Path, workers: int) -> None:
    progress = RecordingProgress(cancel_after=2)
    cfg = SynthConfig(n=12, seed=0, size=SIZE, workers=workers)
    with pytest.raises(Cancelled):
        generate_dataset(tmp_path, cfg, progress=progress)
    assert not list(tmp_path.rglob("*.tmp"))
    assert not (tmp_path / "ground_truth.csv").exists()
    assert 2 <= len(list(tmp_path.rglob("*.dcm"))) < cfg.n


def test_noise_free_rendering_keeps_everything_else() -> None:
    """Without quantum noise: the same anatomy, masks and labels; smoother pixels whose mean
    is the noisy image's (within the noise), i.e. the expected image."""
    noisy = generate_image(5, 3, size=256)
    clean = generate_image(5, 3, size=256, quantum_noise=False)
    assert np.array_equal(noisy.bone_mask, clean.bone_mask) and noisy.labels == clean.labels
    window = ("window_center", "window_width")  # set from the pixels, so it moves a little
    assert {k: v for k, v in noisy.meta.items() if k not in window} == {
        k: v for k, v in clean.meta.items() if k not in window
    }
    a, b = noisy.monochrome2().astype(np.float64), clean.monochrome2().astype(np.float64)
    inside = noisy.bone_mask.astype(bool)
    rough = lambda x: np.abs(np.diff(x, axis=1))[inside[:, 1:]].mean()  # noqa: E731
    assert rough(b) < 0.95 * rough(a)  # the noise is gone (bone texture stays)
    assert abs((a - b)[inside].mean()) < 0.05 * (a[inside].std() + 1)  # same expected image
