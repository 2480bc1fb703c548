"""Exported DICOM objects as validators this project did not write see them (issue #15, 2-4).

Real single-frame DICOM files of many kinds (pydicom's test files and pydicom-data's CR
radiographs: MONOCHROME1, JPEG 2000, RGB, palette colour, NM and CT/MR with and without a Frame
of Reference or an image plane, character sets, sources without Patient ID, Modality, Study or
Series UID, a retired SOP Class, an empty Specific Character Set) are imported with the command
line, analysed (`analyze --all`: the error maps), labelled and boxed through the review session
the window uses, and exported with `export --format dicom-sr,dicom-pm,dicom-seg --images dicom
--status any`, with and without `--deidentify`. Every object is checked with dciodvfy
(dicom3tools; that test alone is skipped when it is not installed) and read back with highdicom;
a source that cannot give an object is skipped with its reason in the notes while the rest is
exported.

dciodvfy warnings that are accepted (each checked, every other warning fails the test):
- inherited: the very same warning is given for the source image the object was derived from
  (the exported image file), i.e. values of the source's Patient and Study modules that the
  derived object must copy;
- a Coding Scheme Designator dciodvfy does not know (`99SKELEX`) that the object declares in its
  Coding Scheme Identification Sequence (PS3.16 section 8: private schemes are declared there;
  dciodvfy does not read that sequence);
- Parametric Map Image Type / Frame Type value 4 `QUANTITY` (highdicom's; a defined term, which
  PS3.3 allows to be extended, missing from dciodvfy's list);
- Parametric Map Laterality empty, when the source has no R or L laterality ("only permitted to
  be empty when actually unknown": it is unknown).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.flows import decide_and_box

DCIODVFY = shutil.which("dciodvfy")

SOURCES = (
    "RG1_UNCR.dcm",  # CR, MONOCHROME1, Pixel Spacing 0\0, Patient Orientation, no Frame of Ref.
    "RG3_J2KR.dcm",  # CR, MONOCHROME1, JPEG 2000, Laterality R, no spacing
    "CT_small.dcm",  # CT with Frame of Reference and image plane, empty Laterality
    "MR_small.dcm",  # MR with image plane, no Specific Character Set
    "JPEG2000.dcm",  # NM Secondary Capture: Frame of Reference, Pixel Spacing, no plane
    "J2K_pixelrep_mismatch.dcm",  # CT, ISO 2022 IR 13 / 87 character sets, JPEG 2000
    "SC_rgb.dcm",  # RGB, ISO_IR 192
    "OT-PAL-8-face.dcm",  # palette colour, no Patient ID, ACR-NEMA style times
    "color-pl.dcm",  # retired Ultrasound Image Storage SOP Class: no derived objects
    "JPEGLSNearLossless_08.dcm",  # no Study / Series Instance UID: no derived objects
)
KINDS = ("sr", "pm", "seg")
NOT_DERIVABLE = {
    "color-pl.dcm": "the source's SOP Class (Ultrasound Image Storage) is retired",
    "JPEGLSNearLossless_08.dcm": "the source has no StudyInstanceUID, SeriesInstanceUID",
}
BOX = (1.0, 2.0, 6.0, 9.0)  # x0, y0, x1, y1: inside the smallest image (10 x 45)
LINE = [(1.0, 1.0), (5.0, 8.0)]


def _bare_variant(root: Path) -> Path:
    """MR_small without Patient ID and Modality and with an empty Specific Character Set (a new
    instance in a new series, so import keeps it)."""
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.PatientID, ds.Modality
    ds.SpecificCharacterSet = ""
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = root / "MR_bare.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@dataclass
class World:
    root: Path
    data_dir: Path
    sources: dict[str, str]  # SOP Instance UID -> source file name

    def export(self, name: str, formats: str, *extra: str) -> Path:
        out = self.root / name
        argv = ["--data-dir", str(self.data_dir), "export", "--out", str(out)]
        argv += ["--format", formats, "--images", "dicom", "--status", "any", *extra]
        assert main(argv) == 0
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("dicom-valid")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copy(get_testdata_file(name), src / name)
    _bare_variant(src)
    sources = {
        str(
            pydicom.dcmread(p, stop_before_pixels=True, force=True).get("SOPInstanceUID", "")
        ): p.name
        for p in src.iterdir()
    }
    data_dir = root / "data"
    assert main(["--data-dir", str(data_dir), "import", str(src)]) == 0
    assert main(["--data-dir", str(data_dir), "analyze", "--all"]) == 0
    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    ws.close()
    assert len(ids) == len(SOURCES) + 1
    decide_and_box(data_dir, "dr.valid", ids, BOX, LINE)
    yield World(root, data_dir, sources)


@pytest.fixture(scope="module")
def plain(world: World) -> Path:
    return world.export("plain", "dicom-sr,dicom-pm,dicom-seg")


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "deidentified"])
def exported(world: World, plain: Path, request: pytest.FixtureRequest) -> Path:
    if not request.param:
        return plain
    return world.export("deidentified", "dicom-sr,dicom-pm,dicom-seg", "--deidentify")


def _by_source(world: World, out: Path, kind: str) -> dict[str, Path]:
    """Source file name -> the `kind` object derived from it (an export without --deidentify)."""
    found = {}
    for path in (out / "dicom" / kind).glob("*.dcm"):
        image = pydicom.dcmread(_source_image(out, path), stop_before_pixels=True)
        found[world.sources[image.SOPInstanceUID]] = path
    return found


def _source_image(out: Path, obj: Path) -> Path:
    """The exported image the object `obj` was derived from (same stem)."""
    (image,) = out.glob(f"images/*/{obj.stem}.dcm")
    return image


def _dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) of dciodvfy on `path`."""
    assert DCIODVFY is not None
    run = subprocess.run([DCIODVFY, "-new", str(path)], capture_output=True, text=True)
    lines = (run.stdout + run.stderr).splitlines()
    return [x for x in lines if x.startswith("Error")], [
        x for x in lines if x.startswith("Warning")
    ]


UNKNOWN_TERM = re.compile(
    r"/CodingSchemeDesignator\(0008,0102\)\[1\]> - Unrecognized defined term = <(.+)>$"
)
QUANTITY = re.compile(
    r"^Warning - </(ImageType|\S*FrameType)\(0008,\w+\)\[4\]> - Unrecognized defined term = <QUANTITY>$"
)
EMPTY_LATERALITY = "</Laterality(0020,0060)> - is only permitted to be empty when actually unknown"


def _accepted(
    kind: str, warning: str, obj: pydicom.Dataset, source: pydicom.Dataset, inherited: set[str]
) -> str | None:
    """The accepted category of `warning`, or None when it is not accepted."""
    if warning in inherited:
        return "inherited from the source"
    declared = {i.CodingSchemeDesignator for i in obj.get("CodingSchemeIdentificationSequence", [])}
    scheme = UNKNOWN_TERM.search(warning)
    if scheme and scheme.group(1) in declared:
        return f"declared private coding scheme {scheme.group(1)}"
    if kind == "pm" and QUANTITY.match(warning):
        return "Parametric Map derived pixel contrast QUANTITY"
    lateral = {str(source.get(k, "")).upper() for k in ("Laterality", "ImageLaterality")}
    if kind == "pm" and EMPTY_LATERALITY in warning and not lateral & {"R", "L"}:
        return "Parametric Map laterality unknown"
    return None


def judge(
    kind: str,
    path: Path,
    source_path: Path,
    verdict: tuple[list[str], list[str]],
    source_warnings: list[str],
    report: dict[str, Counter[str]],
) -> list[str]:
    """dciodvfy's (errors, warnings) on the derived object at `path`: its errors and the
    warnings not accepted, as problems; each accepted warning counted in `report[kind]`."""
    errors, warnings = verdict
    obj = pydicom.dcmread(path, stop_before_pixels=True)
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    problems = [f"{kind}/{path.name}: {e}" for e in errors]
    for warning in warnings:
        category = _accepted(kind, warning, obj, source, set(source_warnings))
        if category is None:
            problems.append(f"{kind}/{path.name}: {warning}")
        else:
            report[kind][category] += 1
    return problems


@pytest.mark.skipif(
    DCIODVFY is None,
    reason="dciodvfy is not installed (Debian/Ubuntu: apt-get install dicom3tools)",
)
def test_every_object_passes_dciodvfy(exported: Path):
    manifest = json.loads((exported / "manifest.json").read_text(encoding="utf-8"))
    images = manifest["counts"]["images"]
    assert images == len(SOURCES) + 1
    report: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    problems = []
    for kind in KINDS:
        objects = sorted((exported / "dicom" / kind).glob("*.dcm"))
        assert len(objects) == images - len(NOT_DERIVABLE), kind
        for path in objects:
            source_path = _source_image(exported, path)
            problems += judge(
                kind, path, source_path, _dciodvfy(path), _dciodvfy(source_path)[1], report
            )
    assert not problems, "dciodvfy:\n" + "\n".join(problems)
    print({k: dict(v) for k, v in report.items()})  # the counts docs/EXPORT.md reports


def stored_box(source: pydicom.Dataset) -> tuple[int, int, int, int]:
    """`BOX` as the review session stores it on `source`: clipped to the image."""
    x0, y0, x1, y1 = (int(v) for v in BOX)
    return x0, y0, min(x1, int(source.Columns)), min(y1, int(source.Rows))


def read_back_seg(path: Path, source: pydicom.Dataset) -> None:
    """The SEG at `path` as highdicom reads it: the `fracture` segment, the box as its mask."""
    seg = hd.seg.segread(path)
    assert seg.get_segment_description(1).segment_label == "fracture"
    mask = seg.get_pixels_by_source_instance(source_sop_instance_uids=[source.SOPInstanceUID])
    expected = np.zeros((source.Rows, source.Columns), dtype=bool)  # the box, as a mask
    x0, y0, x1, y1 = stored_box(source)
    expected[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(mask[0, ..., 0].astype(bool), expected)


def read_back_sr(path: Path, source: pydicom.Dataset) -> None:
    """The SR at `path` as highdicom reads it: the box as a planar ROI, the private scheme."""
    sr = hd.sr.srread(path)
    (box,) = [g for g in sr.content.get_planar_roi_measurement_groups() if not g.get_measurements()]
    x0, y0, x1, y1 = stored_box(source)
    assert box.roi.value.tolist() == [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    assert "99SKELEX" in {i.CodingSchemeDesignator for i in sr.CodingSchemeIdentificationSequence}


def test_objects_read_back_with_highdicom(exported: Path):
    for path in sorted((exported / "dicom" / "seg").glob("*.dcm")):
        source = pydicom.dcmread(_source_image(exported, path), stop_before_pixels=True)
        read_back_seg(path, source)
    for path in sorted((exported / "dicom" / "sr").glob("*.dcm")):
        source = pydicom.dcmread(_source_image(exported, path), stop_before_pixels=True)
        read_back_sr(path, source)
    for path in sorted((exported / "dicom" / "pm").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        pm = hd.pm.ParametricMap.from_dataset(ds)
        voi = pm.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence[0]
        assert voi.VOILUTFunction == "LINEAR_EXACT" and float(voi.WindowWidth) > 0
        assert ds.pixel_array.dtype == np.float32


def test_sources_lacking_attributes_give_valid_objects(world: World, plain: Path):
    """No Patient ID, no Modality, an empty Specific Character Set: the objects carry the Type 2
    attributes empty, and the source's values where it has them."""
    for kind in KINDS:
        objects = _by_source(world, plain, kind)
        assert set(objects) == set(world.sources.values()) - set(NOT_DERIVABLE), kind
        for name in ("MR_bare.dcm", "OT-PAL-8-face.dcm"):
            ds = pydicom.dcmread(objects[name])
            assert "PatientID" in ds and ds.PatientID == "", (kind, name)
            assert "SpecificCharacterSet" not in ds or ds.SpecificCharacterSet, (kind, name)
        ds = pydicom.dcmread(objects["J2K_pixelrep_mismatch.dcm"])
        assert list(ds.SpecificCharacterSet) == ["ISO 2022 IR 13", "ISO 2022 IR 87"]
    pm = {n: pydicom.dcmread(p) for n, p in _by_source(world, plain, "pm").items()}
    assert pm["RG3_J2KR.dcm"].Laterality == "R"  # from the radiograph's Laterality
    assert pm["RG1_UNCR.dcm"].Laterality == ""  # unknown: present, empty (Type 2C)


def test_unusable_sources_are_skipped_with_a_reason(plain: Path):
    notes = json.loads((plain / "manifest.json").read_text(encoding="utf-8"))["notes"]
    for reason in NOT_DERIVABLE.values():
        for kind in KINDS:
            assert f"1 image(s): no dicom-{kind} written: {reason}" in notes
    assert not [n for n in notes if "could not build" in n]


def test_seg_does_not_depend_on_the_other_formats(world: World, plain: Path):
    """The SEG of an export with a Parametric Map is the SEG of an export without one: its Frame
    of Reference is the source's (or none), never the map's nominal plane."""
    alone = _by_source(world, world.export("seg-alone", "dicom-seg"), "seg")
    together = _by_source(world, plain, "seg")
    maps = {
        n: pydicom.dcmread(p).FrameOfReferenceUID for n, p in _by_source(world, plain, "pm").items()
    }
    assert set(alone) == set(together)
    for name, path in together.items():
        source = pydicom.dcmread(world.root / "src" / name, stop_before_pixels=True, force=True)
        with_pm, without = pydicom.dcmread(path), pydicom.dcmread(alone[name])
        for seg in (with_pm, without):
            assert seg.get("FrameOfReferenceUID") == source.get("FrameOfReferenceUID"), name
            assert ("PlaneOrientationSequence" in seg.SharedFunctionalGroupsSequence[0]) == (
                "ImagePositionPatient" in source
            ), name
            if "ImagePositionPatient" not in source:
                assert seg.PatientOrientation == source.get("PatientOrientation", ""), name
        if "FrameOfReferenceUID" not in source:
            assert maps[name] not in (with_pm.get("FrameOfReferenceUID"), None)
