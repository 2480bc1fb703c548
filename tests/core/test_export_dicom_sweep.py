"""Every DICOM test file pydicom offers, through import, analysis, review and the DICOM export,
as dciodvfy and highdicom see the result (issue #15).

`pydicom.data.get_testdata_files()` (pydicom's test files, and pydicom-data's when installed) is
copied into one folder under unique names and imported with the command line: import alone
decides what it takes (DICOMDIRs, reports, plans, text and JSON files are skipped; truncated,
undecodable and pixel-less files fail; other encodings of an instance already imported are
duplicates), and the test states those counts per reason. Every image imported is analysed,
given a decision and a box through the review session, and exported once with `export --format
dicom-sr,dicom-pm,dicom-seg --images dicom --status any` (the de-identified export is covered by
test_export_dicom_valid.py, whose helpers and accepted dciodvfy warnings this module reuses).

Checked: no Error on any SR, Parametric Map or SEG; no Error in an exported image that dciodvfy
does not also report for its source file; only the accepted warnings on the derived objects;
every SR and SEG read back with highdicom. The figures are printed (`-s`) for docs/EXPORT.md.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.flows import decide_and_box
from tests.core.test_export_dicom_valid import (
    BOX,
    DCIODVFY,
    KINDS,
    World,
    _dciodvfy,
    _source_image,
    judge,
    read_back_seg,
    read_back_sr,
)

needs_dciodvfy = pytest.mark.skipif(
    DCIODVFY is None,
    reason="dciodvfy is not installed (Debian/Ubuntu: apt-get install dicom3tools)",
)


@dataclass
class Sweep:
    world: World
    out: Path
    report: dict  # the import report (`import --report`)
    sources: dict[str, Path]  # SOP Instance UID -> the imported source file


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    root = tmp_path_factory.mktemp("dicom-sweep")
    src = root / "src"
    src.mkdir()
    files = sorted(Path(f) for f in get_testdata_files() if Path(f).is_file())
    for k, path in enumerate(files):  # several folders hold files of the same name
        shutil.copy(path, src / f"{k:03d}_{path.name}")
    data_dir = root / "data"
    report_path = root / "import.json"
    argv = ["--data-dir", str(data_dir), "import", str(src), "--report", str(report_path)]
    # one import worker: which file of a group of duplicates (the same instance in another
    # encoding) is imported then follows the file order, so every run exports the same sources
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("os.cpu_count", lambda: 1)
        assert main(argv) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert len(report["files"]) == len(files)
    assert main(["--data-dir", str(data_dir), "analyze", "--all"]) == 0
    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    ws.close()
    assert len(ids) == report["images_added"]
    decide_and_box(data_dir, "dr.sweep", ids, BOX)
    sources = {}
    for result in report["files"]:
        if result["outcome"] == "imported":
            path = Path(result["path"])
            header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            sources[str(header.SOPInstanceUID)] = path
    world = World(root, data_dir, {uid: p.name for uid, p in sources.items()})
    out = world.export("plain", "dicom-sr,dicom-pm,dicom-seg")
    yield Sweep(world, out, report, sources)


def _outcomes(report: dict) -> Counter[str]:
    return Counter(f"{r['outcome']}: {r['reason'] or '-'}" for r in report["files"])


def test_import_decides_and_every_image_is_exported(sweep: Sweep):
    report = sweep.report
    print("\nimport:", {k: report[k] for k in ("imported", "duplicates", "skipped", "failed")})
    for reason, n in sorted(_outcomes(report).items()):
        if not reason.startswith(("imported", "duplicate")):
            print(f"  {n:3d} {reason[:110]}")
    assert report["imported"] >= 80  # pydicom's own test files alone give more than 80
    assert report["failed"] + report["skipped"] + report["duplicates"] > 0
    manifest = json.loads((sweep.out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["images"] == report["images_added"]
    notes = manifest["notes"]
    assert not [n for n in notes if "could not build" in n], notes
    counts = {k: len(list((sweep.out / "dicom" / k).glob("*.dcm"))) for k in KINDS}
    print("derived objects:", counts, "notes:", notes)
    single = [u for u, p in sweep.sources.items() if _frames(p) == 1]
    assert counts["sr"] == counts["pm"] == counts["seg"] > len(single) // 2


def _frames(path: Path) -> int:
    header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return int(header.get("NumberOfFrames", 1) or 1)


@needs_dciodvfy
def test_every_derived_object_passes_dciodvfy(sweep: Sweep):
    objects = [(k, p) for k in KINDS for p in sorted((sweep.out / "dicom" / k).glob("*.dcm"))]
    images = sorted({_source_image(sweep.out, p) for _, p in objects})
    with ThreadPoolExecutor(2) as pool:
        verdicts = dict(
            zip(
                images + [p for _, p in objects],
                pool.map(_dciodvfy, images + [p for _, p in objects]),
                strict=True,
            )
        )
    report: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    problems = []
    for kind, path in objects:
        source_path = _source_image(sweep.out, path)
        problems += judge(kind, path, source_path, verdicts[path], verdicts[source_path][1], report)
    print("\nderived objects:", {k: sum(1 for j, _ in objects if j == k) for k in KINDS})
    print("accepted warnings:", {k: dict(v) for k, v in report.items()})
    assert not problems, "dciodvfy:\n" + "\n".join(problems)


@needs_dciodvfy
def test_exported_images_add_no_error_to_their_source(sweep: Sweep):
    exported = sorted((sweep.out / "images").glob("*/*.dcm"))
    pairs = {}
    for path in exported:
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        pairs[path] = sweep.sources[uid]
    paths = list(pairs) + sorted(set(pairs.values()))
    with ThreadPoolExecutor(2) as pool:
        errors = dict(zip(paths, (set(e) for e, _ in pool.map(_dciodvfy, paths)), strict=True))
    added = {p.name: errors[p] - errors[s] for p, s in pairs.items() if errors[p] - errors[s]}
    print(f"\nexported images: {len(pairs)} from {len(set(pairs.values()))} source files")
    assert len(pairs) >= len(sweep.sources)
    assert not added, added


def test_every_sr_and_seg_reads_back_with_highdicom(sweep: Sweep):
    segs = sorted((sweep.out / "dicom" / "seg").glob("*.dcm"))
    for path in segs:
        source = pydicom.dcmread(_source_image(sweep.out, path), stop_before_pixels=True)
        read_back_seg(path, source)
    srs = sorted((sweep.out / "dicom" / "sr").glob("*.dcm"))
    for path in srs:
        source = pydicom.dcmread(_source_image(sweep.out, path), stop_before_pixels=True)
        read_back_sr(path, source)
    assert segs and len(srs) == len(segs)
