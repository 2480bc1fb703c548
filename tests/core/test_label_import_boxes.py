"""Issue #15, finding 8: boxes of region tasks into `label import`, from a CSV or COCO JSON.

Through the command line: `synth` -> `import` -> `task add lesion --kind region` ->
`label import D/boxes.csv --map TYPE=lesion` (SynthMSK's own boxes, relative paths) stores
each box as the reader's region (regions API, audit rows naming the file), a second import adds
nothing, and `export --format coco` gives the same boxes to pycocotools. An exported COCO set
imported into another workspace gives the same boxes back. Bad rows and annotations are
refused one by one, with their reasons, and nothing is stored.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import AuditEvent, Image, Region
from skelex_desktop.core.review.regions import list_regions
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace

Capsys = pytest.CaptureFixture[str]
READER = "dr.boxes"
SIZE = 128


def cli(data: Path, *args: str) -> int:
    return main(["--data-dir", str(data), "--reader", READER, *args])


def synth_imported(root: Path, n: int = 8, seed: int = 2) -> tuple[Path, Path]:
    """(data dir, synth folder): abnormal SynthMSK PNGs imported, a region task 'lesion'."""
    data, out = root / "data", root / "synth"
    argv = ["synth", "--out", str(out), "--n", str(n), "--seed", str(seed), "--format", "png"]
    assert main([*argv, "--size", str(SIZE), "--abnormal-fraction", "1", "--json"]) == 0
    assert cli(data, "import", str(out)) == 0
    assert cli(data, "task", "add", "lesion", "--kind", "region") == 0
    return data, out


def stored_boxes(data: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """Image file name -> its current regions (x0, y0, x1, y1), through the regions API."""
    ws = open_workspace(Settings(data_dir=data))
    try:
        with ws.db.read() as session:
            images = session.execute(select(Image.id, Image.file_path)).all()
            out = {
                Path(path).name: sorted(
                    (b.x0, b.y0, b.x1, b.y1) for _id, b in list_regions(session, image_id)
                )
                for image_id, path in images
            }
    finally:
        ws.close()
    return {name: boxes for name, boxes in out.items() if boxes}


def region_rows(data: Path) -> tuple[int, list[AuditEvent]]:
    """How many regions are stored, and the region.add audit rows."""
    ws = open_workspace(Settings(data_dir=data))
    try:
        with ws.db.read() as session:
            count = session.scalar(select(func.count(Region.id))) or 0
            audits = list(
                session.scalars(select(AuditEvent).where(AuditEvent.action == "region.add"))
            )
            session.expunge_all()
    finally:
        ws.close()
    return count, audits


def coco_boxes(folder: Path) -> Counter[tuple[str, tuple[float, ...]]]:
    """(category name, bbox) of every annotation of an exported COCO set, read by pycocotools."""
    coco_mod = pytest.importorskip("pycocotools.coco")
    found: Counter[tuple[str, tuple[float, ...]]] = Counter()
    for path in sorted((folder / "annotations").glob("instances_*.json")):
        coco = coco_mod.COCO(str(path))
        for annotation in coco.loadAnns(coco.getAnnIds()):
            name = coco.loadCats(annotation["category_id"])[0]["name"]
            found[(name, tuple(annotation["bbox"]))] += 1
    return found


def test_synth_boxes_csv_imports_as_reader_regions_and_exports_to_coco(
    tmp_path: Path, capsys: Capsys
) -> None:
    data, out = synth_imported(tmp_path)
    with open(out / "boxes.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 4
    maps = [
        arg for kind in sorted({r["task"] for r in rows}) for arg in ("--map", f"{kind}=lesion")
    ]
    capsys.readouterr()
    assert cli(data, "label", "import", str(out / "boxes.csv"), *maps, "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "imported": len(rows),
        "present": 0,
        "errors": [],
    }

    expected: dict[str, list[tuple[float, float, float, float]]] = {}
    for r in rows:
        box = tuple(float(r[c]) for c in ("x0", "y0", "x1", "y1"))
        expected.setdefault(Path(r["file"]).name, []).append(box)  # type: ignore[arg-type]
    assert stored_boxes(data) == {name: sorted(boxes) for name, boxes in expected.items()}
    count, audits = region_rows(data)
    assert count == len(rows) and len(audits) == len(rows)
    assert {(a.who, a.after["source"], a.after["imported_from"]) for a in audits} == {
        (READER, "human", str(out / "boxes.csv"))
    }

    assert cli(data, "label", "import", str(out / "boxes.csv"), *maps) == 0
    assert f"imported 0 boxes ({len(rows)} already there)" in capsys.readouterr().out
    assert region_rows(data)[0] == len(rows)

    export = tmp_path / "export"
    argv = ["export", "--format", "coco", "--out", str(export), "--status", "any"]
    assert cli(data, *argv, "--task", "lesion", "--images", "none") == 0
    assert coco_boxes(export) == Counter(
        ("lesion", (x0, y0, x1 - x0, y1 - y0))
        for boxes in expected.values()
        for x0, y0, x1, y1 in boxes
    )


def test_an_exported_coco_set_imports_into_another_workspace_with_the_same_boxes(
    tmp_path: Path, capsys: Capsys
) -> None:
    data, out = synth_imported(tmp_path / "first", n=4)
    with open(out / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        files = [row["file"] for row in csv.DictReader(handle)]
    boxes = "image,task,x0,y0,x1,y1\n" + "".join(
        f"{name},lesion,{3 + k},{4.5 + k},{60 + k},{70.25 + k}\n" for k, name in enumerate(files)
    )
    (out / "mine.csv").write_text(boxes, encoding="utf-8")
    assert cli(data, "label", "import", str(out / "mine.csv")) == 0
    export = tmp_path / "export"
    argv = ["export", "--format", "coco", "--out", str(export), "--status", "any"]
    assert cli(data, *argv, "--task", "lesion") == 0
    exported = coco_boxes(export)
    assert sum(exported.values()) == len(files)

    other = tmp_path / "second"
    assert cli(other, "import", str(export / "images")) == 0
    assert cli(other, "task", "add", "lesion", "--kind", "region") == 0
    capsys.readouterr()
    for path in sorted((export / "annotations").glob("instances_*.json")):
        assert cli(other, "label", "import", str(path)) == 0  # file_name: by its unique tail
    assert coco_boxes_of(other, tmp_path / "again") == exported
    assert sorted(map(sorted, stored_boxes(other).values())) == sorted(
        map(sorted, stored_boxes(data).values())
    )


def coco_boxes_of(data: Path, folder: Path) -> Counter[tuple[str, tuple[float, ...]]]:
    argv = ["export", "--format", "coco", "--out", str(folder), "--status", "any"]
    assert cli(data, *argv, "--task", "lesion", "--images", "none") == 0
    return coco_boxes(folder)


def test_bad_box_rows_are_refused_with_reasons_and_nothing_is_stored(
    tmp_path: Path, capsys: Capsys
) -> None:
    data, out = synth_imported(tmp_path, n=2)
    with open(out / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        name = next(csv.DictReader(handle))["file"]
    (out / "bad.csv").write_text(
        "image,task,x0,y0,x1,y1,reader\n"
        f"{name},lesion,1,2,30,40,\n"  # good
        f"{name},lesion,ten,2,30,40,\n"
        f"{name},lesion,30,2,10,40,\n"
        f"{name},lesion,1,2,30,{SIZE + 1},\n"
        f"{name},fracture,1,2,30,40,\n"
        f"{name},nodule,1,2,30,40,\n"
        "nowhere/IMG.png,lesion,1,2,30,40,\n"
        f"{name},lesion,1,2,30,nan,\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert cli(data, "label", "import", str(out / "bad.csv")) == 1
    err = capsys.readouterr().err
    for reason in (
        "line 3: x0 'ten' is not a number of pixels",
        "line 4: box x0=30, y0=2, x1=10, y1=40 is empty or inverted",
        f"line 5: box x0=1, y0=2, x1=30, y1={SIZE + 1} is not inside the image ({SIZE}x{SIZE}",
        "line 6: task 'fracture' is a binary task, not a region task",
        "line 7: unknown task 'nodule'",
        "line 8: no image with SOP Instance UID or file path 'nowhere/IMG.png'",
        "line 9: y1 'nan' is not a number of pixels",
        "7 invalid rows or annotations; nothing was imported",
    ):
        assert reason in err
    assert "line 2" not in err
    assert region_rows(data) == (0, [])

    coco = {
        "images": [
            {"id": 1, "file_name": name, "width": SIZE, "height": SIZE},
            {"id": 2, "file_name": name, "width": 2 * SIZE, "height": 2 * SIZE},
        ],
        "categories": [{"id": 1, "name": "lesion"}, {"id": 2, "name": "fracture"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 2, 20, 30]},  # good
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [1, 2, -5, 30]},
            {"id": 12, "image_id": 1, "category_id": 9, "bbox": [1, 2, 5, 5]},
            {"id": 13, "image_id": 7, "category_id": 1, "bbox": [1, 2, 5, 5]},
            {"id": 14, "image_id": 2, "category_id": 1, "bbox": [1, 2, 5, 5]},
            {"id": 15, "image_id": 1, "category_id": 2, "bbox": [1, 2, 5, 5]},
            {"id": 16, "image_id": 1, "category_id": 1, "bbox": [1, 2, 5]},
        ],
    }
    (out / "bad.json").write_text(json.dumps(coco), encoding="utf-8")
    assert cli(data, "label", "import", str(out / "bad.json"), "--map", "fracture=lesion") == 1
    err = capsys.readouterr().err
    for reason in (
        "annotation 2 (id '11'): box x0=1, y0=2, x1=-4, y1=32 is empty or inverted",
        "annotation 3 (id '12'): category_id '9' is not in 'categories'",
        "annotation 4 (id '13'): image_id '7' is not in 'images'",
        f"annotation 5 (id '14'): the file gives image '{name}' as {2 * SIZE}x{2 * SIZE} pixels",
        "annotation 7 (id '16'): bbox '[1, 2, 5]' is not [x, y, width, height]",
        "5 invalid rows or annotations; nothing was imported",
    ):
        assert reason in err
    assert "annotation 1 " not in err and "annotation 6 " not in err  # 6: mapped to lesion
    assert region_rows(data) == (0, [])
