"""Export of labelled sets: selection, split, CSV/JSONL, COCO, YOLO, HF, manifest, atomicity."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import update

from skelex_desktop.core.db.models import Image
from skelex_desktop.core.export import (
    ExportError,
    ExportOptions,
    Selection,
    export_labelled_set,
    parse_formats,
    parse_split,
)
from skelex_desktop.core.export.manifest import verify
from skelex_desktop.core.export.selection import ExportItem, LabelInfo, TaskInfo
from skelex_desktop.core.export.split import plan_split
from skelex_desktop.core.ingest.pixels import read_frame
from skelex_desktop.core.progress import Cancelled, RecordingProgress
from tests.core.export_fixtures import N_IMAGES, READER, ExportWorld, leftovers, open_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportWorld]:
    w = open_world(tmp_path_factory.mktemp("export"))
    yield w
    w.workspace.close()


@pytest.fixture(scope="module")
def full_export(world: ExportWorld) -> Path:
    out = world.root / "full"
    export_labelled_set(
        world.db, ExportOptions(out=out, formats=("csv", "jsonl", "coco", "yolo", "hf"), seed=7)
    )
    return out


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_csv_has_one_row_per_image_with_encoded_labels(world: ExportWorld, full_export: Path):
    rows = _rows(full_export)
    assert len(rows) == N_IMAGES
    by_id = {int(r["image_id"]): r for r in rows}
    for k, image_id in enumerate(world.labelled.image_ids):
        row, truth = by_id[image_id], world.labelled.truth[image_id]
        expected = "-1" if k % 7 == 5 else truth["fracture"]
        assert row["fracture"] == expected
        assert row["tumour_category"] == truth["tumour_category"]
        assert row["abnormal"] == ""  # no label for this task
        assert row["reader"] == READER and row["source"] == "human"
        assert row["split"] in ("train", "val", "test")
        assert (full_export / row["file"]).is_file()
        assert row["patient"] == truth["patient_id"]
    first = by_id[world.labelled.image_ids[0]]
    assert first["model_version"] == world.labelled.model_label
    # the first image's length: 50 px, in mm where the source has a pixel spacing
    assert first["measurements"].startswith("length ")
    assert first["measurements"].endswith((" mm", " px"))
    assert all(r["measurements"] == "" for i, r in by_id.items() if i != int(first["image_id"]))
    records = [json.loads(line) for line in (full_export / "labels.jsonl").read_text().splitlines()]
    (measured,) = [r for r in records if r["measurement_list"]]
    (m,) = measured["measurement_list"]
    assert (m["kind"], m["points"], m["reader"]) == ("length", [[10.0, 20.0], [40.0, 60.0]], READER)
    assert f"length {m['value']:.1f} {m['unit']}" == first["measurements"]


def test_jsonl_matches_csv_and_keeps_types(full_export: Path):
    lines = (full_export / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == N_IMAGES
    assert {r["fracture"] for r in records} <= {1, 0, -1}
    boxed = [r for r in records if r["regions"]]
    assert boxed and all(r["regions"][0]["task"] == "fracture" for r in boxed)
    assert [r["image"] for r in records] == [r["image"] for r in _rows(full_export)]


def test_no_patient_in_two_splits_and_split_recorded(full_export: Path):
    rows = _rows(full_export)
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        splits_of.setdefault(row["patient"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    manifest = json.loads((full_export / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["split"]["seed"] == 7
    assert manifest["split"]["level"] == "patient"
    assert manifest["split"]["stratify_by"] == "fracture"
    assert sum(manifest["split"]["images"].values()) == N_IMAGES


def test_split_is_seeded_and_stratified() -> None:
    task = TaskInfo(1, "fracture", "Fracture", "binary", ("no", "yes"), 1, "")
    items = []
    for pk in range(1, 101):
        label = LabelInfo(int(pk % 4 == 0), False, "human", "r", None)
        items.append(
            ExportItem(
                pk,
                pk,
                f"ID{pk}",
                "",
                None,
                "",
                "1",
                None,
                "",
                "2",
                f"3.{pk}",
                0,
                "",
                8,
                8,
                "CR",
                "",
                "",
                "",
                labels={"fracture": label},
            )
        )
    plan = plan_split(items, [task], (0.7, 0.15, 0.15), seed=1)
    again = plan_split(items, [task], (0.7, 0.15, 0.15), seed=1)
    other = plan_split(items, [task], (0.7, 0.15, 0.15), seed=2)
    assert plan.by_patient == again.by_patient
    assert plan.by_patient != other.by_patient
    counts = {s: list(plan.by_patient.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 70, "val": 15, "test": 15}
    positives = plan.strata["1"]
    assert sum(positives.values()) == 25
    assert 16 <= positives["train"] <= 19 and positives["val"] >= 3 and positives["test"] >= 3


def test_coco_files_load_in_pycocotools(world: ExportWorld, full_export: Path):
    coco_mod = pytest.importorskip("pycocotools.coco")
    n_images = n_boxes = 0
    for split in ("train", "val", "test"):
        coco = coco_mod.COCO(str(full_export / "annotations" / f"instances_{split}.json"))
        names = [c["name"] for c in coco.loadCats(coco.getCatIds())]
        assert names == ["fracture"]  # the only task with boxes; image-level tasks are labels
        for image in coco.loadImgs(coco.getImgIds()):
            assert (full_export / "images" / image["file_name"]).is_file()
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
                assert ann["bbox"] == [40.0, 50.0, 80.0, 90.0]
                assert coco.loadCats(ann["category_id"])[0]["name"] == "fracture"
                n_boxes += 1
            n_images += 1
    positives = sum(1 for t in world.labelled.truth.values() if t["fracture"] == "1")
    assert n_images == N_IMAGES and n_boxes == positives


def test_yolo_labels_and_data_yaml(full_export: Path):
    data = yaml.safe_load((full_export / "data.yaml").read_text(encoding="utf-8"))
    assert data["train"] == "images/train" and data["nc"] == len(data["names"])
    fracture = [k for k, v in data["names"].items() if v == "fracture"][0]
    images = sorted((full_export / "images").rglob("*.png"))
    assert len(images) == N_IMAGES
    lines = []
    for image in images:
        label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
        assert label.is_file()
        lines += label.read_text(encoding="utf-8").split("\n")[:-1]
    assert lines
    for line in lines:
        cls, cx, cy, w, h = line.split()
        assert int(cls) == fracture
        np.testing.assert_allclose(
            [float(cx), float(cy), float(w), float(h)],
            [80 / 256, 95 / 256, 80 / 256, 90 / 256],
            atol=1e-5,
        )


def test_hf_imagefolder_loads_with_datasets(full_export: Path):
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(full_export / "images"))
    total = sum(len(loaded[s]) for s in loaded)
    assert total == N_IMAGES
    assert set(loaded) <= {"train", "validation", "test"}
    features = loaded["train"].features
    assert features["fracture"] == datasets.ClassLabel(names=["no fracture", "fracture"])
    sample = loaded["train"][0]
    assert sample["image"].size == (256, 256) and sample["image"].mode == "L"  # png8 by default
    assert sample["fracture"] in (1, 0, -1) and sample["fracture_target"] in (1, 0, -100)
    assert (sample["abnormal"], sample["abnormal_target"]) == (-1, -100)  # no label
    name = features["tumour_category"].int2str(sample["tumour_category"])
    assert name in ("malignant", "intermediate", "benign", "none")


def test_png16_keeps_the_values(world: ExportWorld):
    out = world.root / "png16"
    export_labelled_set(world.db, ExportOptions(out=out, formats=("csv", "coco")))  # png16 default
    row = _rows(out)[0]
    stored = cv2.imread(str(out / row["file"]), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    mapping = manifest["png_values"].get(row["file"], {"offset": 0.0, "scale": 1.0})
    with world.db.read() as session:
        path = session.get(Image, int(row["image_id"])).file_path
    values = read_frame(Path(path)).values
    np.testing.assert_allclose(stored / mapping["scale"] + mapping["offset"], values, atol=1)


def test_manifest_lists_every_file_with_its_hash(full_export: Path):
    manifest = json.loads((full_export / "manifest.json").read_text(encoding="utf-8"))
    assert verify(full_export) == []
    assert manifest["tool_version"] and manifest["selection"]["status"] == "confirmed"
    assert [t["name"] for t in manifest["schema"]][:2] == ["abnormal", "fracture"]
    assert {t["scope"] for t in manifest["schema"]} == {"image"}  # per image unless "study"
    assert manifest["model_versions"][0]["name"] == "skelex-test"
    assert "labels.csv" in manifest["files"] and "data.yaml" in manifest["files"]
    assert manifest["deidentification"] is None


def test_selection_filters(world: ExportWorld):
    only_model = world.root / "by-model"
    result = export_labelled_set(
        world.db,
        ExportOptions(
            out=only_model,
            formats=("csv",),
            images="none",
            selection=Selection(tasks=("fracture",), model_version="skelex-test:1.0"),
        ),
    )
    assert result.images == 1
    assert list(_rows(only_model)[0])[-5:] == [
        "fracture",
        "reader",
        "source",
        "model_version",
        "measurements",
    ]
    with pytest.raises(ExportError, match="nothing to export"):
        export_labelled_set(
            world.db,
            ExportOptions(
                out=world.root / "none", formats=("csv",), selection=Selection(status="in_review")
            ),
        )
    with pytest.raises(ExportError, match="nothing to export"):
        export_labelled_set(
            world.db,
            ExportOptions(
                out=world.root / "none", formats=("csv",), selection=Selection(reader="someone")
            ),
        )
    with pytest.raises(ExportError, match="unknown task"):
        export_labelled_set(
            world.db,
            ExportOptions(
                out=world.root / "none", formats=("csv",), selection=Selection(tasks=("nope",))
            ),
        )
    assert not (world.root / "none").exists()


def test_status_any_and_date_range(world: ExportWorld):
    with world.db.write() as session:
        session.execute(
            update(Image).where(Image.id == world.labelled.image_ids[-1]).values(status="in_review")
        )
    try:
        confirmed = export_labelled_set(
            world.db, ExportOptions(out=world.root / "confirmed", formats=("csv",), images="none")
        )
        anything = export_labelled_set(
            world.db,
            ExportOptions(
                out=world.root / "any",
                formats=("csv",),
                images="none",
                selection=Selection(status="any"),
            ),
        )
    finally:
        with world.db.write() as session:
            session.execute(
                update(Image)
                .where(Image.id == world.labelled.image_ids[-1])
                .values(status="confirmed")
            )
    assert (confirmed.images, anything.images) == (N_IMAGES - 1, N_IMAGES)
    from datetime import date

    with pytest.raises(ExportError, match="nothing to export"):
        export_labelled_set(
            world.db,
            ExportOptions(
                out=world.root / "future",
                formats=("csv",),
                selection=Selection(date_from=date(2100, 1, 1)),
            ),
        )


def test_cancel_leaves_nothing_behind(world: ExportWorld):
    out = world.root / "cancelled"
    progress = RecordingProgress(cancel_after=3)
    with pytest.raises(Cancelled):
        export_labelled_set(world.db, ExportOptions(out=out, formats=("csv", "coco")), progress)
    assert not out.exists()
    assert leftovers(world.root) == []


def test_target_must_be_new_or_empty(world: ExportWorld):
    taken = world.root / "taken"
    taken.mkdir()
    (taken / "x.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ExportError, match="not empty"):
        export_labelled_set(world.db, ExportOptions(out=taken, formats=("csv",)))
    assert (taken / "x.txt").read_text(encoding="utf-8") == "keep me"
    empty = world.root / "empty"
    empty.mkdir()
    export_labelled_set(world.db, ExportOptions(out=empty, formats=("csv",), images="none"))
    assert (empty / "labels.csv").is_file()


def test_option_parsing_and_validation(tmp_path: Path):
    assert parse_formats("csv, COCO,csv") == ("csv", "coco")
    assert parse_split("70,15,15") == pytest.approx((0.7, 0.15, 0.15))
    with pytest.raises(ExportError, match="unknown format"):
        parse_formats("csv,xml")
    with pytest.raises(ExportError):
        parse_split("0.5,0.5")
    with pytest.raises(ExportError, match="needs --images png8 .default. or png16"):
        ExportOptions(out=tmp_path, formats=("hf",), images="dicom").validate()
    with pytest.raises(ExportError, match="format yolo needs --images png8"):
        ExportOptions(out=tmp_path, formats=("csv", "yolo"), images="png16").validate()
    assert ExportOptions(out=tmp_path, formats=("dicom-sr",)).image_mode == "dicom"
    assert ExportOptions(out=tmp_path, formats=("csv", "dicom-sr")).image_mode == "png16"
    assert ExportOptions(out=tmp_path, formats=("csv", "hf")).image_mode == "png8"
    assert ExportOptions(out=tmp_path, formats=("yolo", "dicom-sr")).image_mode == "png8"
    hf16 = ExportOptions(out=tmp_path, formats=("hf",), images="png16")
    hf16.validate()  # allowed on request, with a warning
    assert "I;16" in hf16.warnings()[0] and ExportOptions(tmp_path, ("hf",)).warnings() == []
