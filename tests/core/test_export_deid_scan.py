"""The identity scan of `export --deidentify` on the command line (issue #15, finding 5): device
names and the export's own words pass, the same words copied from a source still fail.

Each test runs synth/import -> label import -> export through `skelex_desktop.cli.main` and reads
the result back with pydicom, pycocotools and pyarrow."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pydicom
import pytest
from pycocotools.coco import COCO
from pydicom.data import get_testdata_file
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace

# pydicom's MR_small family names the institution like the maker (InstitutionName TOSHIBA,
# Manufacturer TOSHIBA_MEC); before, the scan refused it with no way forward. The family's files
# are one instance (one SOP Instance UID), so import keeps one of them.
MAKER_NAMED = ("MR_small.dcm",)
PHYSICIAN = "Test^Anna"  # a family name that is also the name of a split


def _cli(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "--reader", "dr.scan", *args])


def _import_and_label(data_dir: Path, folder: Path, tmp: Path) -> list[int]:
    """`import FOLDER`, then a fracture decision on every image through `label import`."""
    assert _cli(data_dir, "import", str(folder)) == 0
    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    ws.close()
    labels = tmp / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image_id", "task", "value"])
        writer.writerows([i, "fracture", k % 2] for k, i in enumerate(ids))
    assert _cli(data_dir, "label", "import", str(labels)) == 0
    return ids


def _synth_with(folder: Path, n: int, **attributes: str) -> None:
    """`synth` DICOM studies (every image with boxes), then `attributes` written into every
    file's header."""
    argv = ["synth", "--out", str(folder), "--n", str(n), "--seed", "4", "--size", "128"]
    assert main([*argv, "--abnormal-fraction", "1"]) == 0
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def _import_boxes(data_dir: Path, folder: Path) -> None:
    """SynthMSK's boxes (boxes.csv) as the reader's regions of a region task `lesion`."""
    assert _cli(data_dir, "task", "add", "lesion", "--kind", "region") == 0
    with open(folder / "boxes.csv", newline="", encoding="utf-8") as fh:
        kinds = sorted({row["task"] for row in csv.DictReader(fh)})
    maps = [arg for kind in kinds for arg in ("--map", f"{kind}=lesion")]
    assert _cli(data_dir, "label", "import", str(folder / "boxes.csv"), *maps) == 0


def _export(data_dir: Path, out: Path, formats: str, images: str, *extra: str) -> int:
    args = ["export", "--format", formats, "--out", str(out), "--status", "any", *extra]
    return _cli(data_dir, *args, "--deidentify", "--images", images, "--seed", "1")


def test_institution_named_like_its_device_maker_exports(data_dir: Path, tmp_path: Path, capsys):
    sources = tmp_path / "pydicom"
    sources.mkdir()
    for name in MAKER_NAMED:
        shutil.copy(get_testdata_file(name), sources / name)
    originals = [pydicom.dcmread(sources / name) for name in MAKER_NAMED]
    assert all(str(o.InstitutionName) in str(o.Manufacturer) for o in originals)
    _import_and_label(data_dir, sources, tmp_path)
    capsys.readouterr()

    out = tmp_path / "export"
    code = _export(data_dir, out, "csv,dicom-sr", "dicom")
    assert code == 0, capsys.readouterr().err
    exported = [pydicom.dcmread(p) for p in sorted((out / "images").rglob("*.dcm"))]
    assert len(exported) == len(MAKER_NAMED)
    for ds in exported:
        assert ds.Manufacturer == "TOSHIBA_MEC"  # kept by the Basic Profile
        assert "InstitutionName" not in ds
        assert str(ds.PatientName).startswith("ANONYMOUS^P")


def test_physician_named_like_a_split_exports(data_dir: Path, tmp_path: Path, capsys):
    _synth_with(tmp_path / "synth", 12, ReferringPhysicianName=PHYSICIAN)
    _import_and_label(data_dir, tmp_path / "synth", tmp_path)
    _import_boxes(data_dir, tmp_path / "synth")
    capsys.readouterr()

    out = tmp_path / "export"
    formats = "csv,jsonl,coco,yolo,hf,dicom-sr"
    code = _export(data_dir, out, formats, "png8", "--split", "0.34,0.33,0.33")
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["split"]["images"]["test"] > 0
    coco = COCO(str(out / "annotations" / "instances_test.json"))
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and len(coco.getImgIds()) == sum(r["split"] == "test" for r in rows)
    hf_splits = {
        r["split"]
        for p in (out / "images").rglob("*.parquet")
        for r in pq.read_table(p).to_pylist()
    }
    assert hf_splits == {r["split"] for r in rows}
    sr = pydicom.dcmread(next((out / "dicom" / "sr").glob("*.dcm")))
    assert sr.ReferringPhysicianName == ""  # the name itself did not travel


@pytest.mark.parametrize(
    ("keyword", "images", "where"),
    [
        (
            "ManufacturerModelName",
            "dicom",
            r"images/\w+/P\d+_\d+\.dcm \(element ManufacturerModelName\)",
        ),
        ("BodyPartExamined", "none", r"labels\.csv \(line \d+, column body_part\)"),
    ],
)
def test_physician_name_copied_into_a_kept_attribute_fails(
    data_dir: Path, tmp_path: Path, capsys, keyword: str, images: str, where: str
):
    _synth_with(tmp_path / "synth", 3, ReferringPhysicianName=PHYSICIAN, **{keyword: "TEST"})
    _import_and_label(data_dir, tmp_path / "synth", tmp_path)
    capsys.readouterr()

    out = tmp_path / "export"
    assert _export(data_dir, out, "csv", images) == 1
    err = capsys.readouterr().err
    assert "ReferringPhysicianName component" in err
    assert re.search(where, err), err
    assert not out.exists()
