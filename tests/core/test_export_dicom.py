"""DICOM exports read back with highdicom and pydicom: SR (TID 1500), Parametric Map, SEG."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest

from skelex_desktop.core.export import ExportOptions, export_labelled_set
from tests.core.export_fixtures import ExportWorld, open_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportWorld]:
    w = open_world(tmp_path_factory.mktemp("dicom"))
    yield w
    w.workspace.close()


@pytest.fixture(scope="module")
def exported(world: ExportWorld) -> tuple[Path, list[dict[str, str]], list[str]]:
    out = world.root / "dicom-out"
    result = export_labelled_set(
        world.db,
        ExportOptions(
            out=out, formats=("csv", "jsonl", "dicom-sr", "dicom-pm", "dicom-seg"), deidentify=True
        ),
    )
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    lines = (out / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    for row, line in zip(rows, lines, strict=True):
        record = json.loads(line)
        row["n_regions"] = len(record["regions"])
        row["measurement_list"] = record["measurement_list"]
    return out, rows, result.notes


def _texts(item: pydicom.Dataset, code: str) -> list[str]:
    """TEXT values of content items named `code` (DCM), anywhere under `item`."""
    found = []
    for child in item.get("ContentSequence", []):
        name = child.ConceptNameCodeSequence[0].CodeValue
        if name == code and "TextValue" in child:
            found.append(child.TextValue)
        found += _texts(child, code)
    return found


def test_sr_holds_findings_observers_algorithm_and_regions(exported):
    out, rows, _ = exported
    assert len(list((out / "dicom" / "sr").glob("*.dcm"))) == len(rows)
    assert sum(len(r["measurement_list"]) for r in rows) == 1  # the fixture's one length
    for row in rows:
        sr = hd.sr.srread(out / "dicom" / "sr" / f"{row['image']}.dcm")
        assert isinstance(sr, hd.sr.Comprehensive3DSR)
        report = sr.content
        groups = report.get_image_measurement_groups()
        findings = {q.name.value: q.value.meaning for q in groups[0].get_qualitative_evaluations()}
        expected = {"1": "fracture", "0": "no fracture", "-1": "uncertain"}[row["fracture"]]
        assert findings["fracture"] == expected
        assert findings["tumour_category"] == row["tumour_category"]
        observers = report.get_observer_contexts()
        assert any(o.observer_type == pydicom.sr.codedict.codes.DCM.Person for o in observers)
        rois = report.get_planar_roi_measurement_groups()
        assert len(rois) == row["n_regions"] + len(row["measurement_list"])
        if rois:
            region = rois[0].roi
            assert region.value_type == hd.sr.ValueTypeValues.SCOORD
        for measured, group in zip(row["measurement_list"], rois[row["n_regions"] :], strict=True):
            (value,) = group.get_measurements()
            assert value.name.meaning == "Length" and measured["kind"] == "length"
            assert value.value == pytest.approx(measured["value"])
            assert value.unit.value == {"mm": "mm", "px": "{pixels}"}[measured["unit"]]
            assert group.roi.value.tolist() == measured["points"]
        if row["model_version"]:
            assert len(groups) == 2
            assert _texts(groups[1][0], "111001") == ["skelex-test"]  # Algorithm Name
            assert _texts(groups[1][0], "111003") == ["1.0"]  # Algorithm Version
            assert any(o.observer_type == pydicom.sr.codedict.codes.DCM.Device for o in observers)
        ds = pydicom.dcmread(out / "dicom" / "sr" / f"{row['image']}.dcm")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
        assert ds.PatientID == row["patient"]


def test_parametric_map_holds_the_float_error_map(world: ExportWorld, exported):
    out, rows, notes = exported
    maps = list((out / "dicom" / "pm").glob("*.dcm"))
    assert len(maps) == 1
    assert any("no error map: no Parametric Map written" in n for n in notes)
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(maps[0]))
    ds = pydicom.dcmread(maps[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"
    assert ds.pixel_array.dtype == np.float32 and ds.pixel_array.shape == (256, 256)
    expected = cv2.resize(
        np.load(world.labelled.error_map), (256, 256), interpolation=cv2.INTER_LINEAR
    )
    np.testing.assert_allclose(ds.pixel_array, expected, rtol=1e-6)
    source = ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    first = next(r for r in rows if r["model_version"])
    assert source == first["sop_instance_uid"] and pm.PatientID == first["patient"]


def test_seg_holds_the_boxes(exported):
    out, rows, notes = exported
    boxed = [r for r in rows if r["n_regions"]]
    segs = sorted((out / "dicom" / "seg").glob("*.dcm"))
    assert [p.stem for p in segs] == sorted(r["image"] for r in boxed)
    assert any("no regions: no SEG written" in n for n in notes)
    row = boxed[0]
    seg = hd.seg.segread(out / "dicom" / "seg" / f"{row['image']}.dcm")
    assert seg.number_of_segments == 1
    assert seg.get_segment_description(1).segment_label == "fracture"
    mask = seg.get_pixels_by_source_instance(source_sop_instance_uids=[row["sop_instance_uid"]])[
        0, ..., 0
    ]
    expected = np.zeros((256, 256), dtype=bool)
    expected[50:140, 40:120] = True
    np.testing.assert_array_equal(mask.astype(bool), expected)
