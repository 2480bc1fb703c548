"""Generate a whole synthetic data set on disk: images, masks, ground truth, boxes, sidecar.

The plan (patients, studies, regions, which images are abnormal) is drawn in the main process
from the seed; every image is then rendered from (seed, index) alone, so a process pool gives
byte-identical output. Workers render and write their own files atomically (tmp + rename) and
return only the table rows; the main process writes the CSV and JSON files at the end.
"""

from __future__ import annotations

import csv
import json
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydicom.dataset import Dataset

from ..ingest.discover import NOT_RADIOGRAPHS
from ..ingest.layout import SIDECAR_COLUMNS  # the importer's sidecar format, written here
from ..progress import Progress, check
from .demographics import Patient, Study, make_patient, make_study
from .dicom_io import build_dataset, encode, instance_uids
from .image import GENERATOR_VERSION, SynthImage, generate_image
from .views import BODY_PARTS, REGIONS

GT_COLUMNS = (
    "file",
    "patient_id",
    "study_uid",
    "sop_uid",
    "region",
    "laterality",
    "view",
    "abnormal",
    "fracture",
    "implant",
    "tumour_category",
    "kl_grade",
    "anatomical_location",
    "finding_types",
    "modality",
    "photometric",
    "bone_mask",
    "masks",
)
# the finding boxes in the box CSV form `label import` reads (task: the finding type)
BOX_COLUMNS = ("file", "task", "x0", "y0", "x1", "y1")
_REGION_WEIGHTS = {
    "hand": 0.2,
    "wrist": 0.14,
    "forearm": 0.14,
    "knee": 0.24,
    "ankle": 0.16,
    "foot": 0.12,
}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. `workers=None` uses all CPUs; 1 renders in this process."""

    n: int = 40
    seed: int = 0
    abnormal_fraction: float = 0.5
    fmt: str = "dicom"  # "dicom" or "png"
    size: int = 1024
    workers: int | None = None
    studies_per_patient: tuple[int, int] = (1, 3)


@dataclass
class SynthResult:
    """Where everything went."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    ground_truth_csv: Path | None = None
    findings_json: Path | None = None
    boxes_csv: Path | None = None
    sidecar_csv: Path | None = None
    n_patients: int = 0
    n_studies: int = 0
    n_abnormal: int = 0


@dataclass(frozen=True)
class PlanItem:
    """One image of the plan."""

    index: int
    patient_k: int
    study_k: int
    first_day: int
    series_number: int
    instance_number: int
    region: str
    view: str
    laterality: str
    abnormal: bool


def make_plan(cfg: SynthConfig) -> list[PlanItem]:
    """Patients with several studies, each study 1-2 views of one body part, and an exact
    number (round(n * abnormal_fraction)) of abnormal images, shuffled by the seed."""
    if cfg.n < 0 or not 0.0 <= cfg.abnormal_fraction <= 1.0:
        raise ValueError("n must be >= 0 and abnormal_fraction within [0, 1]")
    lo, hi = cfg.studies_per_patient
    if not 1 <= lo <= hi:
        raise ValueError("studies_per_patient must be (lo, hi) with 1 <= lo <= hi")
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 303]))
    names = list(_REGION_WEIGHTS)
    probs = np.array([_REGION_WEIGHTS[r] for r in names])
    rows: list[dict[str, Any]] = []
    patient_k = 0
    while len(rows) < cfg.n:
        n_studies = int(rng.integers(lo, hi + 1))
        first_day = int(rng.integers(0, 1600))
        for study_k in range(n_studies):
            region = names[int(rng.choice(len(names), p=probs / probs.sum()))]
            lat = "L" if rng.random() < 0.5 else "R"
            views = list(BODY_PARTS[region].views)
            n_views = 1 if rng.random() < 0.35 else len(views)
            for v, view in enumerate(views[:n_views]):
                rows.append(
                    dict(
                        patient_k=patient_k,
                        study_k=study_k,
                        first_day=first_day,
                        series_number=v + 1,
                        instance_number=1,
                        region=region,
                        view=view,
                        laterality=lat,
                    )
                )
        patient_k += 1
    rows = rows[: cfg.n]
    n_abn = int(round(cfg.n * cfg.abnormal_fraction))
    abnormal = np.zeros(cfg.n, bool)
    abnormal[rng.permutation(cfg.n)[:n_abn]] = True
    return [PlanItem(index=i, abnormal=bool(abnormal[i]), **row) for i, row in enumerate(rows)]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


@dataclass(frozen=True)
class RenderedItem:
    """One planned image with its patient, study and instance UIDs."""

    image: SynthImage
    patient: Patient
    study: Study
    series_uid: str
    sop_uid: str

    def dicom(self, item: PlanItem) -> Dataset:
        """The image as a CR/DX dataset with its headers."""
        return build_dataset(
            self.image,
            self.patient,
            self.study,
            self.series_uid,
            self.sop_uid,
            item.series_number,
            item.instance_number,
            variant=item.index,
        )


def render_plan_item(cfg: SynthConfig, item: PlanItem) -> RenderedItem:
    """Render one planned image and its subject, in memory (same seed, same pixels)."""
    img = generate_image(
        cfg.seed,
        item.index,
        size=cfg.size,
        region=item.region,
        view=item.view,
        laterality=item.laterality,
        abnormal=item.abnormal,
    )
    patient = make_patient(cfg.seed, item.patient_k)
    study = make_study(cfg.seed, item.patient_k, item.study_k, item.first_day)
    series_uid, sop_uid = instance_uids(cfg.seed, item.index, study.study_uid, item.series_number)
    return RenderedItem(img, patient, study, series_uid, sop_uid)


def render_item(cfg: SynthConfig, item: PlanItem, out_dir: Path) -> dict[str, Any]:
    """Render one planned image, write its image and mask files, return its table rows."""
    rendered = render_plan_item(cfg, item)
    img, patient, study, sop_uid = (
        rendered.image,
        rendered.patient,
        rendered.study,
        rendered.sop_uid,
    )
    stem = f"IMG{item.index:05d}"
    folder = Path(patient.patient_id) / study.study_uid
    if cfg.fmt == "dicom":
        rel = folder / f"{stem}.dcm"
        _write_atomic(out_dir / rel, encode(rendered.dicom(item)))
    elif cfg.fmt == "png":
        rel = folder / f"{stem}.png"
        _write_atomic(out_dir / rel, _png(img.monochrome2()))
    else:
        raise ValueError(f"unknown format {cfg.fmt!r}")
    bone_rel = Path("masks") / f"{stem}_bone.png"
    _write_atomic(out_dir / bone_rel, _png(img.bone_mask.astype(np.uint8) * 255))
    mask_rels: list[str] = []
    findings = []
    for k, f in enumerate(img.findings):
        mrel = Path("masks") / f"{stem}_{k}_{f.type}.png"
        _write_atomic(out_dir / mrel, _png(f.mask.astype(np.uint8) * 255))
        mask_rels.append(mrel.as_posix())
        findings.append(
            {
                "type": f.type,
                "box": list(f.box),
                "location": f.location,
                "severity": f.severity,
                "detail": f.detail,
                "mask": mrel.as_posix(),
            }
        )
    lab, meta = img.labels, img.meta
    gt = {
        "file": rel.as_posix(),
        "patient_id": patient.patient_id,
        "study_uid": study.study_uid,
        "sop_uid": sop_uid,
        "region": meta["region"],
        "laterality": meta["laterality"],
        "view": meta["view"],
        "abnormal": lab["abnormal"],
        "fracture": lab["fracture"],
        "implant": lab["implant"],
        "tumour_category": lab["tumour_category"],
        "kl_grade": "" if lab["kl_grade"] is None else lab["kl_grade"],
        "anatomical_location": lab["anatomical_location"],
        "finding_types": ";".join(lab["finding_types"]),
        "modality": meta["modality"],
        "photometric": meta["photometric"] if cfg.fmt == "dicom" else "MONOCHROME2",
        "bone_mask": bone_rel.as_posix(),
        "masks": ";".join(mask_rels),
    }
    sidecar = {
        "file": rel.as_posix(),
        "patient_id": patient.patient_id,
        "patient_name": patient.name,
        "birth_date": patient.birth_date,
        "sex": patient.sex,
        "study_uid": study.study_uid,
        "study_date": study.date,
        "accession_number": study.accession,
        "body_part": meta["body_part"],
        "view": meta["view"],
        "laterality": meta["laterality"],
        "pixel_spacing_mm": f"{meta['spacing_mm']:.6f}",
    }
    box = {
        "file": rel.as_posix(),
        "sop_uid": sop_uid,
        "width": cfg.size,
        "height": cfg.size,
        "labels": {k: v for k, v in gt.items() if k in GT_COLUMNS[7:13]},
        "findings": findings,
    }
    return {"gt": gt, "sidecar": sidecar, "json": box}


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _box_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per finding with a non-empty box: file, finding type, x0, y0, x1, y1."""
    return [
        {
            "file": r["json"]["file"],
            "task": f["type"],
            **dict(zip(BOX_COLUMNS[2:], f["box"], strict=True)),
        }
        for r in rows
        for f in r["json"]["findings"]
        if f["box"][0] < f["box"][2] and f["box"][1] < f["box"][3]
    ]


def _finish(
    out_dir: Path, cfg: SynthConfig, plan: list[PlanItem], rows: list[dict[str, Any]]
) -> SynthResult:
    res = SynthResult(out_dir)
    res.files = [out_dir / r["gt"]["file"] for r in rows]
    res.ground_truth_csv = out_dir / "ground_truth.csv"
    _write_csv(res.ground_truth_csv, GT_COLUMNS, [r["gt"] for r in rows])
    if cfg.fmt == "png":
        res.sidecar_csv = out_dir / "skelex_sidecar.csv"
        _write_csv(res.sidecar_csv, SIDECAR_COLUMNS, [r["sidecar"] for r in rows])
    res.boxes_csv = out_dir / "boxes.csv"
    _write_csv(res.boxes_csv, BOX_COLUMNS, _box_rows(rows))
    res.findings_json = out_dir / "findings.json"
    meta = {"seed": cfg.seed, "generator_version": GENERATOR_VERSION}  # SynthMSK version
    payload = json.dumps({**meta, "images": [r["json"] for r in rows]}, indent=1)
    _write_atomic(res.findings_json, payload.encode())
    res.n_patients = len({p.patient_k for p in plan})
    res.n_studies = len({(p.patient_k, p.study_k) for p in plan})
    res.n_abnormal = sum(int(r["gt"]["abnormal"]) for r in rows)
    return res


def generate_dataset(
    out_dir: Path, cfg: SynthConfig, progress: Progress | None = None
) -> SynthResult:
    """Render `cfg.n` images into `out_dir`; raises `Cancelled` (leaving whole files only)."""
    if cfg.fmt not in ("dicom", "png"):
        raise ValueError(f"unknown format {cfg.fmt!r}")
    out_dir = Path(out_dir)
    masks = out_dir / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    (masks / NOT_RADIOGRAPHS).write_text(
        "SynthMSK ground-truth masks, not radiographs: skelex-desktop import skips this folder\n",
        encoding="utf-8",
    )
    plan = make_plan(cfg)
    if progress is not None:
        progress.set_total(len(plan))
        progress.set_status("generating synthetic radiographs")
    workers = cfg.workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(plan)))
    rows: list[dict[str, Any]] = []
    if workers == 1:
        for item in plan:
            check(progress)
            rows.append(render_item(cfg, item, out_dir))
            if progress is not None:
                progress.advance(current=rows[-1]["gt"]["file"])
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            # at most two items per worker in flight, so a cancel stops the run promptly
            pending = iter(plan)
            futures: deque[Future[dict[str, Any]]] = deque(
                pool.submit(render_item, cfg, it, out_dir) for it in islice(pending, 2 * workers)
            )
            try:
                while futures:
                    check(progress)
                    rows.append(futures.popleft().result())
                    for item in islice(pending, 1):
                        futures.append(pool.submit(render_item, cfg, item, out_dir))
                    if progress is not None:
                        progress.advance(current=rows[-1]["gt"]["file"])
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    return _finish(out_dir, cfg, plan, rows)


__all__ = ["SynthConfig", "SynthResult", "PlanItem", "make_plan", "generate_dataset", "REGIONS"]
