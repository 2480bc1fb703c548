"""The ML formats as the tools that load them see them (issue #15, finding 6).

The real flow on the command line: `synth` -> `import` -> `task add` (a regression task) ->
`label import` -> boxes drawn through the review session the window uses -> `export --format
yolo,hf,coco` with the default images; then each output is opened the way its tool does: the
images with `cv2.imread(path)` (ultralytics' loader: IMREAD_COLOR, BGR uint8) and
`PIL.Image.open(p).convert("RGB")`, YOLO by ultralytics' conventions (data.yaml keys, the
images/<split> -> labels/<split> rule, normalised `cls cx cy w h` lines; ultralytics itself needs
torchvision, which does not work with our torch), Hugging Face with
`datasets.load_dataset("imagefolder", ...)` and a CrossEntropyLoss(ignore_index=-100), COCO with
pycocotools.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image as PILImage
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.review.regions import Box
from skelex_desktop.core.review.session import ReviewSession
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace

BOX = (40.0, 50.0, 120.0, 140.0)  # x0, y0, x1, y1 on 256 x 256 images
FRACTURE_NAMES = ["no fracture", "fracture"]


@dataclass
class World:
    root: Path
    data_dir: Path
    truth: dict[str, dict[str, str]]  # SOP Instance UID -> ground-truth row
    synth: Path
    uncertain_sop: str  # its fracture label is uncertain
    unlabelled_sop: str  # it has no tumour_category label
    boxed: set[str]  # SOP UIDs with a fracture box

    def cli(self, *argv: str) -> int:
        return main(["--data-dir", str(self.data_dir), *argv])

    def export(self, name: str, *argv: str) -> Path:
        out = self.root / name
        assert self.cli("export", "--out", str(out), "--status", "any", "--seed", "1", *argv) == 0
        return out


def _label_csv(world_synth: Path, truth: dict[str, dict[str, str]], path: Path) -> tuple[str, str]:
    """Labels from the ground truth with absolute file paths; one fracture uncertain, one image
    without a tumour category, a bone age (regression) on every other image."""
    sops = sorted(truth)
    uncertain, unlabelled = sops[1], sops[2]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "task", "value", "uncertain"])
        for k, sop in enumerate(sops):
            row = truth[sop]
            file = str((world_synth / row["file"]).resolve())
            writer.writerow([file, "abnormal", row["abnormal"], "0"])
            writer.writerow([file, "fracture", row["fracture"], "1" if sop == uncertain else "0"])
            if sop != unlabelled:
                writer.writerow([file, "tumour_category", row["tumour_category"], "0"])
            if row["kl_grade"]:
                writer.writerow([file, "kl_grade", row["kl_grade"], "0"])
            if k % 2 == 0:
                writer.writerow([file, "bone_age", f"{10 + k}.5", "0"])
    return uncertain, unlabelled


def _draw_boxes(data_dir: Path, sops: set[str]) -> None:
    """A fracture box on each of these images, drawn through the review session."""
    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        ids = list(s.scalars(select(Image.id).where(Image.sop_instance_uid.in_(sops))))
    session = ReviewSession(ws.db, "dr.boxes")
    try:
        for image_id in ids:
            session.open(image_id)
            session.select_task("fracture")
            assert session.add_region(Box(*BOX))
        assert session.wait(10)
    finally:
        session.close()
        ws.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ml")
    synth = root / "synth"
    data_dir = root / "data"
    base = ["--data-dir", str(data_dir)]
    assert (
        main([*base, "synth", "--out", str(synth), "--n", "12", "--seed", "4", "--size", "256"])
        == 0
    )
    assert main([*base, "import", str(synth)]) == 0
    assert main([*base, "task", "add", "bone_age", "--kind", "regression"]) == 0
    with open(synth / "ground_truth.csv", newline="", encoding="utf-8") as fh:
        truth = {row["sop_uid"]: row for row in csv.DictReader(fh)}
    assert {r["photometric"] for r in truth.values()} == {"MONOCHROME1", "MONOCHROME2"}
    labels = root / "labels.csv"
    uncertain, unlabelled = _label_csv(synth, truth, labels)
    assert main([*base, "label", "import", str(labels)]) == 0
    boxed = {sop for sop, row in truth.items() if row["fracture"] == "1"}
    assert boxed
    _draw_boxes(data_dir, boxed)
    yield World(root, data_dir, truth, synth, uncertain, unlabelled, boxed)


@pytest.fixture(scope="module")
def ml_export(world: World) -> Path:
    """`export --format yolo,hf,coco` with the default images."""
    return world.export("ml", "--format", "yolo,hf,coco", "--split", "0.5,0.25,0.25")


@pytest.fixture(scope="module")
def png8_table(world: World) -> Path:
    """The same selection as png8 images with labels.csv: the reference rendering and the
    stem -> source mapping."""
    return world.export("png8", "--format", "csv", "--images", "png8", "--split", "0.5,0.25,0.25")


def _png8_rows(png8_table: Path) -> dict[str, dict[str, str]]:
    with open(png8_table / "labels.csv", newline="", encoding="utf-8") as fh:
        return {row["image"]: row for row in csv.DictReader(fh)}


def _assert_looks_like_a_radiograph(gray: np.ndarray, bone: np.ndarray, name: str) -> None:
    """A spread of grey levels, not mostly black or white, bone brighter than the soft tissue
    around it (the ring of pixels within 4 px of the bone mask)."""
    assert gray.dtype == np.uint8, name
    assert len(np.unique(gray)) >= 64, f"{name}: only {len(np.unique(gray))} grey levels"
    extreme = float(np.mean((gray <= 5) | (gray >= 250)))
    assert extreme < 0.5, f"{name}: {extreme:.0%} of pixels black or white"
    assert float(gray.std()) > 20, name
    ring = cv2.dilate(bone.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~bone
    assert gray[bone].mean() > gray[ring].mean() + 20, f"{name}: bone not brighter than around it"


def _bone_mask(world: World, sop: str) -> np.ndarray:
    mask = cv2.imread(str(world.synth / world.truth[sop]["bone_mask"]), cv2.IMREAD_GRAYSCALE)
    return mask > 0


def test_default_images_look_right_in_cv2_and_pil(world: World, ml_export: Path, png8_table):
    reference = _png8_rows(png8_table)
    images = sorted((ml_export / "images").rglob("*.png"))
    assert len(images) == len(world.truth) == len(reference)
    photometric = set()
    for path in images:
        row = reference[path.stem]
        sop = row["sop_instance_uid"]
        photometric.add(world.truth[sop]["photometric"])
        bone = _bone_mask(world, sop)
        bgr = cv2.imread(str(path))  # what ultralytics' loader calls: IMREAD_COLOR
        assert bgr.shape == (256, 256, 3) and bgr.dtype == np.uint8
        assert np.array_equal(bgr[..., 0], bgr[..., 1]) and np.array_equal(bgr[..., 1], bgr[..., 2])
        _assert_looks_like_a_radiograph(bgr[..., 0], bone, f"cv2 {path.name}")
        rgb = np.asarray(PILImage.open(path).convert("RGB"))
        _assert_looks_like_a_radiograph(rgb[..., 0], bone, f"PIL {path.name}")
        png8 = cv2.imread(str(png8_table / row["file"]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(bgr[..., 0], png8)  # the png8 rendering
    assert photometric == {"MONOCHROME1", "MONOCHROME2"}  # MONOCHROME1 inverted: bone bright
    manifest = json.loads((ml_export / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["images"] == "png8"


def test_png16_stays_default_for_tables_and_is_refused_for_yolo(world: World, capsys):
    out = world.export("tables", "--format", "csv,coco", "--task", "fracture")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["images"] == "png16"
    first = next((out / "images").rglob("*.png"))
    assert cv2.imread(str(first), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    capsys.readouterr()
    refused = world.root / "yolo16"
    code = world.cli("export", "--format", "yolo", "--images", "png16", "--out", str(refused))
    assert code == 2 and not refused.exists()
    err = capsys.readouterr().err
    assert "yolo" in err and "png8" in err and "cv2.imread" in err and err.count("\n") == 1


def test_png16_for_hf_on_request_with_a_warning(world: World, capsys):
    capsys.readouterr()
    out = world.export("hf16", "--format", "hf", "--images", "png16", "--task", "fracture")
    printed = capsys.readouterr().out
    assert "warning:" in printed and "I;16" in printed
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["images"] == "png16" and any("I;16" in w for w in manifest["warnings"])
    first = next((out / "images").rglob("*.png"))
    assert cv2.imread(str(first), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def _yolo_label_path(image: Path) -> Path:
    """ultralytics' img2label_paths: the last /images/ becomes /labels/, suffix .txt."""
    sa, sb = "/images/", "/labels/"
    text = str(image)
    return Path(sb.join(text.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def _load_yolo(
    data_yaml: Path,
) -> tuple[list[str], dict[str, list[tuple[Path, list[list[float]]]]]]:
    """A small loader with ultralytics' conventions: class names and (image, rows) per split."""
    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    root = Path(data.get("path") or data_yaml.parent)
    names = data["names"]
    names = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    assert data["nc"] == len(names)
    splits: dict[str, list[tuple[Path, list[list[float]]]]] = {}
    for split in ("train", "val", "test"):
        if split not in data:
            continue
        folder = root / data[split]
        assert not Path(data[split]).is_absolute() and folder.is_dir()
        items = []
        for image in sorted(folder.glob("*.png")):
            label = _yolo_label_path(image)
            assert label.is_file(), label
            rows = [[float(v) for v in line.split()] for line in label.read_text().splitlines()]
            items.append((image, rows))
        splits[split] = items
    return names, splits


def test_yolo_loads_with_ultralytics_conventions(world: World, ml_export: Path, png8_table):
    names, splits = _load_yolo(ml_export / "data.yaml")
    assert names == ["fracture"]  # only tasks with boxes are detection classes
    reference = _png8_rows(png8_table)
    seen = 0
    for items in splits.values():
        for image, rows in items:
            sop = reference[image.stem]["sop_instance_uid"]
            height, width = cv2.imread(str(image)).shape[:2]
            if sop in world.boxed:
                (row,) = rows
                cls, cx, cy, w, h = row
                assert int(cls) == cls and 0 <= cls < len(names)
                assert all(0 <= v <= 1 for v in (cx, cy, w, h))
                x0, y0, x1, y1 = BOX
                expected = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height]
                expected += [(x1 - x0) / width, (y1 - y0) / height]
                np.testing.assert_allclose([cx, cy, w, h], expected, atol=1e-5)
            else:
                assert rows == []  # a background image
            seen += 1
    assert seen == len(world.truth)


def _hf_splits(ml_export: Path):  # type: ignore[no-untyped-def]
    datasets = pytest.importorskip("datasets")
    return datasets, datasets.load_dataset("imagefolder", data_dir=str(ml_export / "images"))


def test_hf_tasks_are_class_labels_and_train_with_ignore_index(
    world: World, ml_export: Path, png8_table: Path
):
    reference = _png8_rows(png8_table)
    datasets, loaded = _hf_splits(ml_export)
    torch = pytest.importorskip("torch")
    features = loaded["train"].features
    class_label = datasets.ClassLabel
    assert features["fracture"] == class_label(names=FRACTURE_NAMES)
    assert features["abnormal"] == class_label(names=["normal", "abnormal"])
    assert features["tumour_category"].names == ["malignant", "intermediate", "benign", "none"]
    assert features["kl_grade"] == class_label(names=["0", "1", "2", "3", "4"])
    assert features["bone_age"] == datasets.Value("float64")
    assert features["fracture_uncertain"] == datasets.Value("bool")
    assert features["fracture_target"] == datasets.Value("int64")
    for split in loaded:
        assert loaded[split].features == features  # one schema in every split
    rows = [row for split in loaded for row in loaded[split]]
    assert len(rows) == len(world.truth)
    by_sop = {reference[row["stem"]]["sop_instance_uid"]: row for row in rows}
    for sop, truth in world.truth.items():
        row = by_sop[sop]
        if sop == world.uncertain_sop:
            assert (row["fracture"], row["fracture_target"], row["fracture_uncertain"]) == (
                -1,
                -100,
                True,
            )
        else:
            assert row["fracture"] == int(truth["fracture"]) == row["fracture_target"]
            assert row["fracture_uncertain"] is False
        if sop == world.unlabelled_sop:
            assert (row["tumour_category"], row["tumour_category_target"]) == (-1, -100)
            assert row["tumour_category_uncertain"] is False
        else:
            name = features["tumour_category"].int2str(row["tumour_category"])
            assert name == truth["tumour_category"]
    ages = [row["bone_age"] for row in rows]
    assert any(a is None for a in ages) and any(isinstance(a, float) for a in ages)
    image = rows[0]["image"]
    assert image.size == (256, 256) and image.mode == "L"
    generator = torch.Generator().manual_seed(0)
    for task in ("abnormal", "fracture", "tumour_category", "kl_grade"):
        n_classes = features[task].num_classes
        batch = loaded["train"].with_format("torch")[:]  # as a DataLoader gets it
        assert batch[f"{task}_target"].dtype == torch.int64
        targets = torch.tensor([row[f"{task}_target"] for row in rows])
        assert set(targets.tolist()) <= {-100, *range(n_classes)}
        logits = torch.randn(len(rows), n_classes, generator=generator)
        loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100)
        kept = targets != -100
        expected = torch.nn.functional.cross_entropy(logits[kept], targets[kept])
        assert torch.isclose(loss, expected), task  # "no label" and "uncertain" are ignored


def test_coco_categories_are_box_tasks_only(world: World, ml_export: Path):
    coco_mod = pytest.importorskip("pycocotools.coco")
    boxes = 0
    for split in ("train", "val", "test"):
        path = ml_export / "annotations" / f"instances_{split}.json"
        coco = coco_mod.COCO(str(path))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["fracture"]
        for image in coco.loadImgs(coco.getImgIds()):
            assert (ml_export / "images" / image["file_name"]).is_file()
            assert set(image["labels"]) >= {"abnormal", "fracture", "tumour_category"}
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
                assert ann["bbox"] == [40.0, 50.0, 80.0, 90.0]
                boxes += 1
    assert boxes == len(world.boxed)


def test_no_box_task_writes_no_detection_files(world: World, capsys):
    capsys.readouterr()
    out = world.export("nobox", "--format", "csv,coco,yolo", "--task", "abnormal")
    printed = capsys.readouterr().out
    assert not (out / "annotations").exists() and not (out / "data.yaml").exists()
    assert not (out / "labels").exists()
    assert "note:" in printed and "no detection files" in printed
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert any("no detection files" in n for n in manifest["notes"])
    assert (out / "labels.csv").is_file()


@pytest.mark.parametrize("length", [5, 48, 57, 65, 100])
def test_hf_metadata_values_stay_visible_to_the_identity_scan(length: int):
    """A planted identity in the Parquet metadata is found, whatever value follows it (the low
    byte of a following value's length can be a letter or digit)."""
    from skelex_desktop.core.export.hf import Column, parquet_bytes
    from skelex_desktop.core.export.identities import Identifier
    from skelex_desktop.core.export.phi_scan import Matcher, scan_file

    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890123456"
    planted = [Identifier("PatientID", "DOEJANE7", "patient 1", "text")]
    planted.append(Identifier("SOPInstanceUID", uid, "patient 1", "uid"))
    values = ["P0001", "DOEJANE7", "x" * length, uid, "y" * length, None]
    text = Column("patient", "string", {"dtype": "string", "_type": "Value"}, lambda v: v)
    data = parquet_bytes([text], values)  # type: ignore[arg-type]
    for identifier in planted:
        found = scan_file("images/train/metadata.parquet", data, Matcher([identifier]))
        assert found is not None and found.identifier == identifier


def test_deidentified_hf_export_passes_the_scan_and_loads(world: World):
    datasets = pytest.importorskip("datasets")
    out = world.export("hf-deid", "--format", "hf", "--deidentify", "--task", "fracture")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out / "images"))
    rows = [row for split in loaded for row in loaded[split]]
    assert len(rows) == len(world.truth) and "image_id" not in rows[0]
    assert {row["patient"] for row in rows} <= {f"P{n:04d}" for n in range(1, 10)}
