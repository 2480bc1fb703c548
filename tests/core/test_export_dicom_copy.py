"""The source DICOM copied by `export --images dicom` (issue #15): a source pydicom read in another
VR encoding than it declares is still written, one that cannot be written is skipped with its
reason in the notes while the rest is exported, and the copy's file meta agrees with its data
set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.export import exporter
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.flows import decide_and_box
from tests.core.test_export_dicom_valid import DCIODVFY, _dciodvfy

BOX = (1.0, 2.0, 6.0, 9.0)


def _labelled(root: Path, sources: list[Path]) -> Path:
    """A data folder with `sources` imported (command line), each decided and boxed."""
    src = root / "src"
    src.mkdir()
    for path in sources:
        shutil.copy(path, src / path.name)
    data_dir = root / "data"
    assert main(["--data-dir", str(data_dir), "import", str(src)]) == 0
    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    ws.close()
    assert len(ids) == len(sources)
    decide_and_box(data_dir, "dr.copy", ids, BOX)
    return data_dir


def _export(data_dir: Path, out: Path) -> dict:
    argv = ["--data-dir", str(data_dir), "export", "--out", str(out)]
    assert main([*argv, "--format", "csv", "--images", "dicom", "--status", "any"]) == 0
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_source_read_in_another_encoding_than_declared_is_copied(tmp_path: Path):
    # declares Explicit VR Little Endian (JPEG Baseline) but is encoded implicit
    source = Path(get_testdata_file("SC_rgb_jpeg.dcm"))
    data_dir = _labelled(tmp_path, [source])
    manifest = _export(data_dir, tmp_path / "out")
    copies = sorted((tmp_path / "out" / "images").glob("*/*.dcm"))
    assert manifest["counts"]["images"] == 1 and len(copies) == 1, manifest["notes"]
    copy = pydicom.dcmread(copies[0])
    original = pydicom.dcmread(source, force=True)
    assert copy.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    for elem in original:
        assert copy[elem.tag].value == elem.value, elem.tag


def test_a_source_that_cannot_be_written_is_skipped_not_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    sources = [Path(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")]
    data_dir = _labelled(tmp_path, sources)
    broken = str(pydicom.dcmread(sources[0], stop_before_pixels=True).SOPInstanceUID)
    write = exporter.dicom_bytes

    def failing(ds: pydicom.Dataset) -> bytes:
        if str(ds.SOPInstanceUID) == broken:
            raise TypeError("encoding without a string argument")
        return write(ds)

    monkeypatch.setattr(exporter, "dicom_bytes", failing)
    manifest = _export(data_dir, tmp_path / "out")
    copies = sorted((tmp_path / "out" / "images").glob("*/*.dcm"))
    assert manifest["counts"]["images"] == 1 and len(copies) == 1
    assert pydicom.dcmread(copies[0]).SOPInstanceUID != broken
    reason = "1 image(s): not exported: CT_small.dcm cannot be written as DICOM"
    assert [n for n in manifest["notes"] if n.startswith(reason)], manifest["notes"]
    assert "encoding without a string argument" in " ".join(manifest["notes"])


def _variant(root: Path, name: str, sop_uid: str, meta_uid: str) -> Path:
    """CT_small as a new instance whose data set and file meta name `sop_uid` and `meta_uid`."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = meta_uid
    path = root / name
    ds.save_as(path, enforce_file_format=False)
    return path


def test_copy_keeps_the_valid_meta_uid_of_a_source_with_an_invalid_sop_instance_uid(
    tmp_path: Path,
):
    # as pydicom-data's bad_sequence.dcm: a hash as SOP Instance UID, a valid UID in the meta
    made = tmp_path / "made"
    made.mkdir()
    invalid, valid = (
        "dccc9599087131742838cc1162a630fea87ba9bf61ac09bfda90d4adfa5ddaed",
        generate_uid(),
    )
    consistent = generate_uid()
    sources = [
        _variant(made, "hashed.dcm", invalid, valid),
        _variant(made, "stale.dcm", consistent, generate_uid()),  # both valid: the data set's
    ]
    data_dir = _labelled(tmp_path, sources)
    _export(data_dir, tmp_path / "out")
    copies = {}
    for path in (tmp_path / "out" / "images").glob("*/*.dcm"):
        copies[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    assert set(copies) == {invalid, consistent}
    hashed = pydicom.dcmread(copies[invalid], stop_before_pixels=True)
    assert hashed.file_meta.MediaStorageSOPInstanceUID == valid
    assert hashed.file_meta.FileMetaInformationGroupLength > 0 and hashed.preamble
    stale = pydicom.dcmread(copies[consistent], stop_before_pixels=True)
    assert stale.file_meta.MediaStorageSOPInstanceUID == consistent
    if DCIODVFY is not None:
        source_errors, _ = _dciodvfy(sources[0])
        copy_errors, _ = _dciodvfy(copies[invalid])
        assert set(copy_errors) <= set(source_errors)
