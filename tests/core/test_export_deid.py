"""De-identified exports: Basic Profile, consistent pseudonyms, the identity scan, burned-in."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet
import pydicom
import pytest
from sqlalchemy import select, update

from skelex_desktop.core.db.models import Image, Patient, Series, Study
from skelex_desktop.core.export import ExportError, ExportOptions, export_labelled_set
from skelex_desktop.core.export.identities import IdentifierSet
from skelex_desktop.core.export.phi_scan import Matcher, scan_file
from tests.core.export_fixtures import N_IMAGES, READER, ExportWorld, leftovers, open_world

ALL = ("csv", "jsonl", "coco", "yolo", "hf", "dicom-sr", "dicom-pm", "dicom-seg")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportWorld]:
    w = open_world(tmp_path_factory.mktemp("deid"))
    yield w
    w.workspace.close()


def _identities(world: ExportWorld) -> list[str]:
    """Identifying values straight from the SynthMSK headers (names, IDs, dates, UIDs)."""
    values: set[str] = set()
    for path in sorted(world.labelled.synth_dir.rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        family, given = str(ds.PatientName).split("^")[:2]
        values |= {
            str(ds.PatientName),
            family,
            given,
            ds.PatientID,
            ds.PatientBirthDate,
            ds.AccessionNumber,
            ds.InstitutionName,
            str(ds.ReferringPhysicianName),
            ds.StudyInstanceUID,
            ds.SOPInstanceUID,
        }
    return sorted(values)


def _found(text: str, value: str) -> re.Match[str] | None:
    """Where `value` stands in `text`. A numeric value (a date, a numeric ID) only counts as a
    whole number: the long random digit strings of de-identified UIDs contain any eight-digit
    date somewhere by chance."""
    if value.isdigit():
        return re.search(rf"(?<![0-9]){value}(?![0-9])", text)
    return re.search(re.escape(value), text)


def _context(text: str, match: re.Match[str]) -> str:
    return f"{match.group(0)!r} in ...{text[max(0, match.start() - 60) : match.end() + 60]}..."


def _export_text(out: Path) -> str:
    """Every file name, text file and DICOM header (without pixels) of an export, as text."""
    parts = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        parts.append(path.relative_to(out).as_posix())
        if path.suffix == ".dcm":
            ds = pydicom.dcmread(path)
            for tag in (0x7FE00010, 0x7FE00008):
                if tag in ds:
                    del ds[tag]
            parts.append(str(ds))
        elif path.suffix == ".parquet":  # the Hugging Face metadata, as datasets reads it
            table = pyarrow.parquet.read_table(path)
            parts.append(json.dumps(table.to_pylist()) + str(table.schema.metadata))
        elif path.suffix != ".png":
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


@pytest.mark.parametrize("images", ["png8", "dicom"])
def test_deidentified_export_carries_no_identity(world: ExportWorld, images: str):
    out = world.root / f"deid-{images}"
    formats = (
        ALL if images == "png8" else ("csv", "jsonl", "coco", "dicom-sr", "dicom-pm", "dicom-seg")
    )
    result = export_labelled_set(
        world.db,
        ExportOptions(out=out, formats=formats, deidentify=True, images=images),
        data_dir=world.root / "data",
    )
    assert result.images == N_IMAGES
    text = _export_text(out).lower()
    leaked = [_context(text, m) for v in _identities(world) if (m := _found(text, v.lower()))]
    assert leaked == []
    assert READER not in text
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "dicognito" in manifest["deidentification"]["method"]


def test_dicom_files_are_deidentified_consistently(world: ExportWorld):
    out = world.root / "deid-consistent"
    export_labelled_set(
        world.db,
        ExportOptions(out=out, formats=("csv", "dicom-sr"), deidentify=True, images="dicom"),
    )
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert "image_id" not in rows[0]
    with world.db.read() as session:
        originals = {
            sop: (date_, pid, path)
            for sop, date_, pid, path in session.execute(
                select(
                    Image.sop_instance_uid, Study.study_date, Patient.patient_id, Image.file_path
                )
                .join(Series, Series.id == Image.series_id)
                .join(Study, Study.id == Series.study_id)
                .join(Patient, Patient.id == Study.patient_id)
            )
        }
    # the pixels are not touched by de-identification: they tell which original an output is
    date_by_pixels = {
        hashlib.sha256(pydicom.dcmread(path).PixelData).hexdigest(): date_
        for date_, _, path in originals.values()
    }
    assert len(date_by_pixels) == len(originals)  # every original has its own pixels
    shifted = 0
    for row in rows:
        ds = pydicom.dcmread(out / row["file"])
        assert ds.SOPInstanceUID == row["sop_instance_uid"]
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.StudyInstanceUID == row["study_instance_uid"]
        assert (
            ds.PatientID == row["patient"] and str(ds.PatientName) == f"ANONYMOUS^{row['patient']}"
        )
        assert row["image"].startswith(row["patient"] + "_")
        assert ds.PatientIdentityRemoved == "YES"
        assert "InstitutionName" not in ds and "StudyDescription" not in ds
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.SOPInstanceUID not in originals
        sr = pydicom.dcmread(out / "dicom" / "sr" / f"{row['image']}.dcm")
        assert sr.PatientID == ds.PatientID and sr.StudyInstanceUID == ds.StudyInstanceUID
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
        referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
        assert referenced.ReferencedSOPInstanceUID == ds.SOPInstanceUID
        original = date_by_pixels[hashlib.sha256(ds.PixelData).hexdigest()]
        assert original is not None and ds.StudyDate != original.strftime("%Y%m%d")
        shifted += 1
    # one patient keeps one pseudonym across all of its images
    by_patient: dict[str, set[str]] = {}
    for row in rows:
        by_patient.setdefault(row["patient"], set()).add(row["split"])
    assert all(len(s) == 1 for s in by_patient.values())
    assert shifted == len(rows) > 0  # every study date moved


def test_name_planted_in_an_untouched_tag_fails_the_export(world: ExportWorld):
    path = world.labelled.synth_dir.rglob("*.dcm").__next__()
    original = path.read_bytes()
    ds = pydicom.dcmread(path)
    ds.ManufacturerModelName = str(ds.PatientName).split("^")[0]
    ds.save_as(path)
    out = world.root / "planted-dicom"
    try:
        with pytest.raises(ExportError) as caught:
            export_labelled_set(
                world.db, ExportOptions(out=out, formats=("csv",), deidentify=True, images="dicom")
            )
    finally:
        path.write_bytes(original)
    message = str(caught.value)
    assert "PatientName" in message and "ManufacturerModelName" in message
    assert "images/" in message and ".dcm" in message
    assert ds.ManufacturerModelName not in message  # the message itself leaks nothing
    assert not out.exists() and leftovers(world.root) == []


def test_name_planted_in_the_table_fails_the_export(world: ExportWorld):
    image_id = world.labelled.image_ids[2]
    with world.db.read() as session:
        image = session.get(Image, image_id)
        name = image.series.study.patient.name
        body_part = image.body_part
    with world.db.write() as session:
        session.execute(
            update(Image).where(Image.id == image_id).values(body_part=name.split("^")[1])
        )
    out = world.root / "planted-csv"
    try:
        with pytest.raises(ExportError, match=r"labels\.csv \(line \d+, column body_part\)"):
            export_labelled_set(
                world.db, ExportOptions(out=out, formats=("csv",), deidentify=True, images="none")
            )
    finally:
        with world.db.write() as session:
            session.execute(update(Image).where(Image.id == image_id).values(body_part=body_part))
    assert not out.exists() and leftovers(world.root) == []


def test_burned_in_images_are_excluded_unless_opted_in(world: ExportWorld):
    with world.db.read() as session:
        path = Path(session.get(Image, world.labelled.image_ids[1]).file_path)
    original = path.read_bytes()
    ds = pydicom.dcmread(path)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(path)
    try:
        excluded = export_labelled_set(
            world.db,
            ExportOptions(
                out=world.root / "burned-out", formats=("csv",), deidentify=True, images="none"
            ),
        )
        included = export_labelled_set(
            world.db,
            ExportOptions(
                out=world.root / "burned-in",
                formats=("csv",),
                deidentify=True,
                images="dicom",
                include_burned_in=True,
            ),
        )
    finally:
        path.write_bytes(original)
    assert excluded.images == N_IMAGES - 1 and "excluded" in excluded.warnings[0]
    assert included.images == N_IMAGES and "included on request" in included.warnings[0]
    flagged = [pydicom.dcmread(p) for p in (world.root / "burned-in").rglob("*.dcm")]
    assert sorted(d.PatientIdentityRemoved for d in flagged).count("NO") == 1


def test_matcher_respects_word_boundaries_and_uid_prefixes():
    ids = IdentifierSet()
    ids.add_name("PatientName", "Novak^Jan^A", "patient record 1")
    ids.add("SOPInstanceUID", "1.2.3.4", "patient record 1", kind="uid")
    ids.add_date("PatientBirthDate", "19650412", "patient record 1")
    matcher = Matcher(ids)
    assert matcher.first("Janssen and Novakova") is None
    assert matcher.first("a/JAN/b").field == "PatientName component"
    assert matcher.first("uid 1.2.3.45 and 1.2.3.4.5") is None
    assert matcher.first("uid=1.2.3.4,").field == "SOPInstanceUID"
    assert matcher.first("born 1965-04-12").field == "PatientBirthDate"
    assert matcher.first("A") is None  # one-letter components are not searched
    finding = scan_file("x.csv", b"image,body_part\nP1,novak\n", matcher)
    assert finding is not None and finding.location == "line 2, column body_part"
