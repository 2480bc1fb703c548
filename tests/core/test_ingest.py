"""Import of DICOM, DICOMDIR and raster files: outcomes, dedup, cancel, consistency."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from sqlalchemy import func, select

from skelex_desktop.core.db.models import (
    AuditEvent,
    Image,
    ImportFileResult,
    ImportJob,
    Patient,
    Series,
    Study,
)
from skelex_desktop.core.domain import ImportOutcome, JobState
from skelex_desktop.core.progress import Cancelled, RecordingProgress
from tests.core.test_ingest_helpers import make_dicom, outcome_of, run_import, write_raster

PYDICOM_FILES = sorted(f for f in get_testdata_files() if os.path.isfile(f))


def assert_consistent(db, job_id: int) -> None:  # noqa: ANN001 - Database
    """Counters equal the result rows; every image reaches its patient."""
    with db.read() as session:
        job = session.get(ImportJob, job_id)
        results = session.scalars(
            select(ImportFileResult).where(ImportFileResult.job_id == job_id)
        ).all()
        by_outcome = {o: sum(r.outcome == o for r in results) for o in ImportOutcome}
        assert (job.imported, job.duplicates, job.skipped, job.failed) == (
            by_outcome[ImportOutcome.IMPORTED],
            by_outcome[ImportOutcome.DUPLICATE],
            by_outcome[ImportOutcome.SKIPPED],
            by_outcome[ImportOutcome.FAILED],
        )
        images = session.scalar(select(func.count(Image.id)))
        reachable = session.scalar(
            select(func.count(Image.id))
            .join(Series, Image.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
            .join(Patient, Study.patient_id == Patient.id)
        )
        assert images == reachable
        for result in results:
            assert (
                result.outcome == ImportOutcome.IMPORTED
                or result.reason
                or (result.outcome == ImportOutcome.DUPLICATE)
            )
            if result.outcome == ImportOutcome.IMPORTED:
                assert result.image_id is not None


def _pydicom_decodes(path: str) -> bool:
    """The oracle: pydicom itself reads the file and decodes its pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            ds.pixel_array  # noqa: B018 - decoding is the point
    except Exception:
        return False
    return True


def test_every_pydicom_test_file(db, data_dir: Path) -> None:
    report = run_import(db, data_dir, [Path(f) for f in PYDICOM_FILES], workers=2)
    assert len(report.files) >= len(PYDICOM_FILES) - 1  # DICOMDIRs expand into listed files
    seen_sops: dict[str, str] = {}
    for name in PYDICOM_FILES:
        outcome, reason = outcome_of(report, Path(name))
        if outcome in ("failed", "skipped"):
            assert reason, name
        if _pydicom_decodes(name):
            assert outcome in ("imported", "duplicate"), (name, reason)
        seen_sops[name] = outcome
    assert report.imported > 80 and report.failed > 0 and report.skipped > 0
    # the 12-bit JPEG Extended file pylibjpeg cannot decode comes in through python-gdcm
    assert outcome_of(report, Path(get_testdata_file("JPEG-lossy.dcm")))[0] in (
        "imported",
        "duplicate",
    )
    reasons = {Path(r.path).name: r.reason for r in report.files}
    assert reasons["MR_truncated.dcm"].startswith("pixel data truncated: expected 8192 bytes")
    assert reasons["meta_missing_tsyntax.dcm"] == "missing Transfer Syntax UID"
    assert reasons["reportsi.dcm"].startswith("not an image")
    assert_consistent(db, report.job_id)


# Column bands (fractions of the width) in rows 25-50 %, read off the images: the spine vs the
# lungs of the RG1 chest, the tibia vs the air beside the leg inside the collimation of RG3.
ANATOMY = {
    "RG1": ((0.46, 0.54), [(0.26, 0.34), (0.66, 0.74)]),
    "RG3": ((0.47, 0.53), [(0.29, 0.36), (0.66, 0.69)]),
}


def _band_mean(gray: np.ndarray, band: tuple[float, float]) -> float:
    rows, cols = gray.shape
    return float(gray[rows // 4 : rows // 2, int(cols * band[0]) : int(cols * band[1])].mean())


@pytest.mark.parametrize("stem", ["RG1", "RG3"])
def test_real_radiographs_j2k_equals_uncompressed_and_bone_is_bright(stem: str) -> None:
    from skelex_desktop.core.ingest.pixels import read_frame

    plain_path = Path(get_testdata_file(f"{stem}_UNCI.dcm"))
    plain = read_frame(plain_path)
    j2k = read_frame(Path(get_testdata_file(f"{stem}_J2KI.dcm")))
    assert np.array_equal(plain.values, j2k.values)
    assert plain.window == j2k.window
    assert plain.photometric == "MONOCHROME1"
    # MONOCHROME1: high stored values are dark, so the pipeline's values fall as they rise
    raw = pydicom.dcmread(plain_path).pixel_array.astype(np.float64)
    assert np.corrcoef(raw.ravel()[::97], plain.values.ravel()[::97])[0, 1] < -0.99
    bone, backgrounds = ANATOMY[stem]
    background = np.mean([_band_mean(plain.gray, band) for band in backgrounds])
    assert _band_mean(plain.gray, bone) > background + 0.2


def test_reimport_is_idempotent(db, data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for i in range(3):
        make_dicom(folder / f"a{i}.dcm")
    write_raster(folder / "P9" / "S1" / "x.png", np.full((20, 30), 100, np.uint8))
    first = run_import(db, data_dir, [folder])
    assert first.summary() == "imported 4, duplicates 0, skipped 0, failed 0"
    second = run_import(db, data_dir, [folder])
    assert second.summary() == "imported 0, duplicates 4, skipped 0, failed 0"
    assert all(r.image_ids for r in second.files)
    with db.read() as session:
        assert session.scalar(select(func.count(Image.id))) == 4
        assert session.get(ImportJob, second.job_id).state == JobState.COMPLETED
        assert (
            session.scalar(
                select(func.count(AuditEvent.id)).where(AuditEvent.entity == "import_job")
            )
            == 2
        )
    assert_consistent(db, second.job_id)


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_leaves_consistent_database(
    db, data_dir: Path, tmp_path: Path, workers: int
) -> None:
    folder = tmp_path / "in"
    for i in range(12):
        make_dicom(folder / f"f{i:02d}.dcm")
    progress = RecordingProgress(cancel_after=5)
    with pytest.raises(Cancelled):
        run_import(db, data_dir, [folder], progress, workers=workers, batch_size=2)
    with db.read() as session:
        job = session.scalars(select(ImportJob)).one()
        assert job.state == JobState.CANCELLED and job.finished_at is not None
        images = session.scalar(select(func.count(Image.id)))
        assert 5 <= job.imported < 12 and images == job.imported
    assert_consistent(db, job.id)
    # a later import completes the rest without duplicating what was kept
    report = run_import(db, data_dir, [folder])
    assert report.imported == 12 - images and report.duplicates == images


def test_copy_into_managed_store(db, data_dir: Path, tmp_path: Path) -> None:
    source = make_dicom(tmp_path / "one.dcm")
    report = run_import(db, data_dir, [source], copy=True)
    with db.read() as session:
        image = session.get(Image, report.files[0].image_ids[0])
        stored = Path(image.file_path)
        assert (
            stored.is_relative_to(data_dir / "store") and stored.read_bytes() == source.read_bytes()
        )
        thumb = Path(image.thumbnail_path)
        assert thumb.is_relative_to(data_dir / "thumbnails") and thumb.is_file()
    assert not [p for p in (data_dir / "store").rglob(".tmp-*")]


def test_dicomdir_imports_referenced_files(db, data_dir: Path) -> None:
    dicomdir = Path(get_testdata_file("DICOMDIR"))
    report = run_import(db, data_dir, [dicomdir], workers=2)
    own = [r for r in report.files if Path(r.path) == dicomdir.absolute()]
    assert len(own) == 1 and own[0].outcome == ImportOutcome.SKIPPED
    assert "referenced files queued" in own[0].reason
    referenced = [r for r in report.files if r is not own[0]]
    assert len(referenced) > 20
    # pydicom's DICOMDIR test set keeps only headers: the CT files carry no pixels, the MR,
    # CR and US files do, and every file gets a specific outcome
    assert report.imported > 0
    assert all(
        r.outcome != ImportOutcome.FAILED or r.reason.startswith("no pixel data")
        for r in referenced
    )
    assert_consistent(db, report.job_id)


def test_folder_scanned_with_dicomdir_lists_each_file_once(db, data_dir: Path) -> None:
    tree = Path(get_testdata_file("DICOMDIR")).parent / "77654033"
    report = run_import(db, data_dir, [tree])
    paths = [r.path for r in report.files]
    assert len(paths) == len(set(paths))


def test_png_tiff_8_and_16_bit_with_layout_and_sidecar(db, data_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "export"
    grey8 = np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))
    grey16 = (grey8.astype(np.uint16) * 250) + 7
    colour = np.dstack([grey8, grey8 // 2, 255 - grey8])
    write_raster(root / "PAT1" / "ST1" / "a.png", grey8)
    write_raster(root / "PAT1" / "ST1" / "b.tif", grey16)
    write_raster(root / "PAT1" / "ST2" / "c.png", grey16)
    write_raster(root / "PAT2" / "d.jpg", colour)
    write_raster(root / "loose.tiff", grey8)
    (root / "PAT1" / "skelex_sidecar.csv").write_text(
        "file,patient_name,study_date,body_part,laterality,pixel_spacing_mm,view\n"
        "ST1/a.png,Smith^Ann,2023-05-06,wrist,r,0.15,pa\n"
        "ST2/c.png,,20230101,,,0.1\\0.2,\n"
    )
    report = run_import(db, data_dir, [root])
    assert report.summary() == "imported 5, duplicates 0, skipped 0, failed 0"
    with db.read() as session:
        rows = session.execute(
            select(Image, Study, Patient)
            .join(Series, Image.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
            .join(Patient, Study.patient_id == Patient.id)
        ).all()
        by_file = {
            Path(image.file_path).name: (image, study, patient) for image, study, patient in rows
        }
        a_img, a_study, a_pat = by_file["a.png"]
        b_img, b_study, _ = by_file["b.tif"]
        c_img, c_study, _ = by_file["c.png"]
        assert a_pat.patient_id == "PAT1" and a_pat.name == "Smith^Ann"
        assert (
            a_study.study_instance_uid == b_study.study_instance_uid != c_study.study_instance_uid
        )
        assert str(a_study.study_date) == "2023-05-06" and a_study.accession_number == "ST1"
        assert (a_img.body_part, a_img.laterality, a_img.view) == ("WRIST", "R", "PA")
        assert (a_img.calibration, a_img.pixel_spacing_row, a_img.pixel_spacing_col) == (
            "calibrated",
            0.15,
            0.15,
        )
        assert a_img.spacing_source == "skelex_sidecar.csv:pixel_spacing_mm"
        assert (c_img.pixel_spacing_row, c_img.pixel_spacing_col) == (0.1, 0.2)
        assert b_img.calibration == "uncalibrated" and b_img.pixel_spacing_row is None
        assert a_img.bits_stored == 8 and b_img.bits_stored == 16 and c_img.bits_stored == 16
        d_img, _, d_pat = by_file["d.jpg"]
        assert d_pat.patient_id == "PAT2" and d_img.photometric == "RGB"
        _, _, loose_pat = by_file["loose.tiff"]
        assert loose_pat.patient_id == "export"
        assert all(Path(image.thumbnail_path).is_file() for image, _, _ in rows)
    again = run_import(db, data_dir, [root])
    assert again.duplicates == 5 and again.imported == 0


def test_calibration_sources(db, data_dir: Path, tmp_path: Path) -> None:
    files = {
        "calibrated": make_dicom(
            tmp_path / "c.dcm", PixelSpacing=[0.2, 0.25], ImagerPixelSpacing=[0.3, 0.3]
        ),
        "detector": make_dicom(tmp_path / "d.dcm", ImagerPixelSpacing=[0.3, 0.3]),
        "magnified": make_dicom(
            tmp_path / "m.dcm",
            ImagerPixelSpacing=[0.3, 0.3],
            EstimatedRadiographicMagnificationFactor=1.2,
        ),
        "none": make_dicom(tmp_path / "n.dcm"),
        "bad": make_dicom(tmp_path / "b.dcm", PixelSpacing=[0, 0.1]),
    }
    report = run_import(db, data_dir, list(files.values()))
    assert report.imported == 5
    with db.read() as session:
        images = {Path(i.file_path).name: i for i in session.scalars(select(Image))}
    got = {
        key: (
            images[path.name].calibration,
            images[path.name].pixel_spacing_row,
            images[path.name].pixel_spacing_col,
            images[path.name].spacing_source,
        )
        for key, path in files.items()
    }
    assert got["calibrated"] == ("calibrated", 0.2, 0.25, "PixelSpacing")
    assert got["detector"] == ("detector", 0.3, 0.3, "ImagerPixelSpacing")
    assert got["magnified"][0] == "detector"
    assert got["magnified"][1] == pytest.approx(0.25)
    assert got["magnified"][3] == "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
    assert got["none"] == ("uncalibrated", None, None, "")
    assert got["bad"] == ("uncalibrated", None, None, "")


def test_multiframe_gives_one_image_per_frame(db, data_dir: Path, tmp_path: Path) -> None:
    frames = np.stack([np.full((16, 16), v, np.uint16) for v in (10, 20, 30)])
    path = make_dicom(tmp_path / "mf.dcm", pixels=frames)
    report = run_import(db, data_dir, [path])
    assert len(report.files[0].image_ids) == 3
    with db.read() as session:
        assert sorted(session.scalars(select(Image.frame))) == [0, 1, 2]
        thumbs = set(session.scalars(select(Image.thumbnail_path)))
        assert len(thumbs) == 3


def test_bad_inputs_each_get_a_reason(db, data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "bad"
    good = make_dicom(bad / "good.dcm")
    data = good.read_bytes()
    (bad / "truncated.dcm").write_bytes(data[: len(data) - 500])
    (bad / "header_only.dcm").write_bytes(data[:200])
    (bad / "text.dcm").write_text("this is not DICOM at all\n" * 20)
    (bad / "empty.dcm").write_bytes(b"")
    (bad / "fake.png").write_bytes(b"not a png" * 10)
    (bad / "notes.txt").write_text("hello")
    make_dicom(bad / "zero.dcm", pixels=np.zeros((0, 0), np.uint16), Rows=0, Columns=0)
    make_dicom(bad / "huge.dcm", pixels=np.zeros((2, 2), np.uint16), Rows=20000, Columns=20000)
    nopix = make_dicom(bad / "nopix.dcm")
    ds = pydicom.dcmread(nopix)
    del ds.PixelData
    ds.save_as(nopix)
    (bad / "empty_sub").mkdir()
    (bad / "loop").symlink_to(bad)
    (bad / "self").symlink_to(bad / "self")
    (bad / "dangling").symlink_to(bad / "nowhere")
    make_dicom(bad / "locked.dcm")
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()

    from skelex_desktop.core.ingest import pixels

    real_read = Path.read_bytes

    def deny(self: Path) -> bytes:  # root ignores chmod, so simulate EACCES
        if self.name == "locked.dcm":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(pixels.Path, "read_bytes", deny)
    report = run_import(db, data_dir, [bad, empty_folder, tmp_path / "missing"])
    reasons = {Path(r.path).name: (str(r.outcome), r.reason) for r in report.files}
    assert reasons["good.dcm"][0] == "imported"
    assert reasons["truncated.dcm"][1].startswith("pixel data truncated: expected")
    assert reasons["header_only.dcm"][0] == "failed"
    assert reasons["text.dcm"] == (
        "failed",
        "not a DICOM file: no 'DICM' prefix and no dataset at the start",
    )
    assert reasons["empty.dcm"] == ("failed", "empty file (0 bytes)")
    assert reasons["fake.png"][1].startswith("not a valid PNG file")
    assert reasons["notes.txt"] == ("skipped", "not a DICOM or image file")
    assert reasons["zero.dcm"][1].startswith("image has zero size")
    assert reasons["huge.dcm"][1].startswith("image too large: 20000 x 20000")
    assert reasons["nopix.dcm"][1].startswith("no pixel data")
    assert reasons["loop"][1].startswith("symbolic link loop")
    assert reasons["self"][1] == "symbolic link loop"
    assert reasons["dangling"][1] == "broken symbolic link"
    assert reasons["locked.dcm"] == ("failed", "permission denied: the file cannot be read")
    assert reasons["empty"] == ("skipped", "empty folder: no files found")
    assert reasons["missing"] == ("failed", "path does not exist")
    assert_consistent(db, report.job_id)


def test_job_is_stored_with_file_results(db, data_dir: Path, tmp_path: Path) -> None:
    make_dicom(tmp_path / "in" / "a.dcm")
    (tmp_path / "in" / "b.dcm").write_text("junk")
    report = run_import(db, data_dir, [tmp_path / "in"], reader="dr.x")
    payload = report.to_json()
    assert payload["imported"] == 1 and payload["failed"] == 1 and len(payload["files"]) == 2
    with db.read() as session:
        job = session.get(ImportJob, report.job_id)
        assert job.reader == "dr.x" and job.sources == [str(tmp_path / "in")]
        assert job.state == JobState.COMPLETED
        assert len(job.results) == 2


def test_same_frame_twice_in_one_batch_and_a_failed_copy(
    db, data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """A frame met twice in one batch is imported once and both results point at it; when
    the first file cannot be copied into the store, its twin still brings the frame in."""
    first = make_dicom(tmp_path / "a" / "first.dcm", SOPInstanceUID="1.2.3.4.5")
    twin = tmp_path / "b" / "twin.dcm"
    twin.parent.mkdir()
    twin.write_bytes(first.read_bytes())
    report = run_import(db, data_dir, [tmp_path / "a", tmp_path / "b"])
    outcomes = {Path(r.path).name: (r.outcome, r.image_ids) for r in report.files}
    assert outcomes["first.dcm"][0] == "imported" and outcomes["twin.dcm"][0] == "duplicate"
    assert outcomes["first.dcm"][1] == outcomes["twin.dcm"][1] and outcomes["twin.dcm"][1]

    from skelex_desktop.core.ingest import writer

    real_copy = writer.copy_into_store

    def copy_fails_for_first(data_dir_: Path, content_hash: str, path: Path) -> Path:
        if path.name == "first.dcm":
            raise OSError(28, "No space left on device")
        return real_copy(data_dir_, content_hash, path)

    monkeypatch.setattr(writer, "copy_into_store", copy_fails_for_first)
    first2 = make_dicom(tmp_path / "c" / "first.dcm", SOPInstanceUID="1.2.3.4.6")
    twin2 = tmp_path / "d" / "twin.dcm"
    twin2.parent.mkdir()
    twin2.write_bytes(first2.read_bytes())
    report = run_import(db, data_dir, [tmp_path / "c", tmp_path / "d"], copy=True)
    outcomes = {Path(r.path).name: (r.outcome, r.reason, r.image_ids) for r in report.files}
    assert outcomes["first.dcm"][0] == "failed" and "No space left" in outcomes["first.dcm"][1]
    assert outcomes["twin.dcm"][0] == "imported" and outcomes["twin.dcm"][2]
    with db.read() as session:
        image = session.get(Image, outcomes["twin.dcm"][2][0])
        assert image.sop_instance_uid == "1.2.3.4.6"
        assert Path(image.file_path).is_relative_to(data_dir / "store")
    assert_consistent(db, report.job_id)


def test_images_of_a_batch_go_in_with_one_insert(db, data_dir: Path, tmp_path: Path) -> None:
    from sqlalchemy import event

    for i in range(12):
        make_dicom(tmp_path / "in" / f"f{i:02d}.dcm", PixelSpacing=[0.1, 0.1] if i % 2 else None)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("INSERT INTO IMAGES"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        report = run_import(db, data_dir, [tmp_path / "in"], batch_size=100)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert report.summary() == "imported 12, duplicates 0, skipped 0, failed 0"
    assert 1 <= len(statements) <= 2  # one per batch (a batch also ends after one second)
    assert_consistent(db, report.job_id)
