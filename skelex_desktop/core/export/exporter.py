"""`export_labelled_set`: select, split, de-identify, write every format, verify, commit.

Nothing is visible at the target until the whole export, its manifest and (when de-identifying)
the identity scan are done; any failure or cancellation removes the staging folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydicom

from skelex_desktop import __version__
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.export import identities, phi_scan, tabular
from skelex_desktop.core.export.coco import coco_files
from skelex_desktop.core.export.deidentify import PROFILE_CODES, Deidentifier
from skelex_desktop.core.export.detection import detection_notes
from skelex_desktop.core.export.hf import hf_files
from skelex_desktop.core.export.images import dicom_bytes, render_png
from skelex_desktop.core.export.manifest import (
    MANIFEST,
    MANIFEST_VERSION,
    hash_tree,
    manifest_bytes,
)
from skelex_desktop.core.export.options import DICOM_FORMATS, SPLITS, ExportError, ExportOptions
from skelex_desktop.core.export.record import IMAGES_DIR, ExportRecord
from skelex_desktop.core.export.selection import ExportItem, SelectionResult, select_items
from skelex_desktop.core.export.sources import burned_in, frame_count, is_dicom, read_header
from skelex_desktop.core.export.split import SplitPlan, plan_split
from skelex_desktop.core.export.staging import Staging, check_target
from skelex_desktop.core.export.yolo import yolo_files
from skelex_desktop.core.progress import Progress, check


@dataclass
class ExportResult:
    """What an export wrote; `warnings` need the user's attention, `notes` are informative."""

    out: Path
    images: int
    patients: int
    files: int
    per_split: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "images": self.images,
            "patients": self.patients,
            "files": self.files,
            "per_split": self.per_split,
            "warnings": self.warnings,
            "notes": self.notes,
        }

    def summary(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in self.per_split.items())
        return (
            f"exported {self.images} images of {self.patients} patients ({splits}) "
            f"in {self.files} files to {self.out}"
        )


class _Run:
    """The state of one export while it is written into the staging folder."""

    def __init__(self, options: ExportOptions, chosen: SelectionResult, data_dir: Path | None):
        self.options = options
        self.tasks = chosen.tasks
        self.models = chosen.models
        self.items: list[ExportItem] = chosen.items
        self.data_dir = data_dir
        self.deid = Deidentifier() if options.deidentify else None
        self.headers: dict[str, pydicom.Dataset] = {}
        self.warnings: list[str] = options.warnings()
        self.notes: list[str] = []
        self.records: list[ExportRecord] = []
        self.png_values: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, int] = {}
        self.series = {kind: pydicom.uid.generate_uid() for kind in DICOM_FORMATS}
        self.instances = dict.fromkeys(DICOM_FORMATS, 0)
        self.dicom_images: dict[str, str] = {}
        self.patient_codes: dict[int, str] = {}

    # -- preparation -----------------------------------------------------------------------
    def read_headers(self, progress: Progress | None) -> None:
        """DICOM headers of the sources; images with burned-in annotation are excluded."""
        paths = sorted({i.file_path for i in self.items})
        if progress is not None:
            progress.set_total(len(paths))
            progress.set_status("reading source headers")
        for path in paths:
            check(progress)
            if is_dicom(path):
                self.headers[path] = read_header(path)
            if progress is not None:
                progress.advance()
        flagged = [
            i
            for i in self.items
            if i.file_path in self.headers and burned_in(self.headers[i.file_path])
        ]
        if not flagged:
            return
        if self.options.include_burned_in:
            self.warnings.append(
                f"{len(flagged)} image(s) have burned-in annotation (BurnedInAnnotation YES) and "
                "were included on request: their pixels may show identifying text"
            )
        else:
            excluded = {i.image_id for i in flagged}
            self.items = [i for i in self.items if i.image_id not in excluded]
            self.warnings.append(
                f"{len(flagged)} image(s) with burned-in annotation (BurnedInAnnotation YES) were "
                "excluded; use --include-burned-in to export them"
            )

    def assign_codes(self) -> None:
        for item in self.items:
            if item.patient_pk not in self.patient_codes:
                code = (
                    self.deid.patient(item.patient_pk)
                    if self.deid
                    else f"P{len(self.patient_codes) + 1:04d}"
                )
                self.patient_codes[item.patient_pk] = code

    # -- per image -------------------------------------------------------------------------
    def reader(self, name: str) -> str:
        return self.deid.reader(name) if self.deid else name

    def uid(self, uid: str) -> str:
        return self.deid.uid(uid) if self.deid else uid

    def source_dataset(self, item: ExportItem) -> pydicom.Dataset | None:
        if item.file_path not in self.headers:
            return None
        try:
            ds = pydicom.dcmread(item.file_path, force=True)
        except Exception as exc:  # unreadable now although the header was read
            raise ExportError(f"cannot read {Path(item.file_path).name}: {exc}") from exc
        if self.deid is not None:
            self.deid.dataset(ds, item.patient_pk)
        return ds

    def write_item(self, staging: Staging, item: ExportItem, n: int, plan: SplitPlan) -> None:
        split = plan.split_of(item)
        stem = f"{self.patient_codes[item.patient_pk]}_{n:05d}"
        mode = self.options.image_mode
        wants_dicom = mode == "dicom" or any(f in DICOM_FORMATS for f in self.options.formats)
        ds = self.source_dataset(item) if wants_dicom else None
        image_file: str | None = None
        width, height = item.cols, item.rows
        if mode == "dicom" and ds is not None:
            image_file = self.dicom_images.get(item.sop_uid)
            if image_file is None:
                image_file = f"{IMAGES_DIR}/{split}/{stem}.dcm"
                try:
                    data = dicom_bytes(ds)
                except Exception as exc:  # pydicom cannot write this source: skip it, not all
                    self.skip(self.unwritable(item, exc))
                    return
                staging.write(image_file, data)
                self.dicom_images[item.sop_uid] = image_file
        elif mode != "none":
            png_mode = mode if mode in ("png16", "png8") else "png16"
            if mode == "dicom":
                self.skip("image files written as png16 (source is not DICOM)")
            png = render_png(item.file_path, item.frame, png_mode)
            image_file = f"{IMAGES_DIR}/{split}/{stem}.png"
            staging.write(image_file, png.data)
            width, height = png.width, png.height
            if png.mapping != {"offset": 0.0, "scale": 1.0}:
                self.png_values[image_file] = png.mapping
        row = self.row(item, stem, split, image_file, width, height)
        record = ExportRecord(item, stem, split, image_file, row, width, height)
        self.records.append(record)
        if ds is not None:
            self.write_dicom_objects(staging, record, ds)
        elif any(f in DICOM_FORMATS for f in self.options.formats):
            self.skip("DICOM objects skipped (source is not DICOM)")

    def row(
        self,
        item: ExportItem,
        stem: str,
        split: str,
        image_file: str | None,
        width: int,
        height: int,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "image": stem,
            "file": image_file,
            "split": split,
            "patient": self.patient_codes[item.patient_pk] if self.deid else item.patient_id,
            "study_instance_uid": self.uid(item.study_uid),
            "sop_instance_uid": self.uid(item.sop_uid),
            "frame": item.frame,
            "modality": item.modality,
            "body_part": item.body_part,
            "view": item.view,
            "laterality": item.laterality,
            "rows": height,
            "cols": width,
        }
        if self.deid is None:
            row["image_id"] = item.image_id
        for task in self.tasks:
            row[task.name] = tabular.encode_value(task, item.labels.get(task.name), item)
        sources = {lab.source for lab in item.labels.values()} | (
            {"human"} if item.regions else set()
        )
        row["reader"] = ";".join(self.reader(r) for r in item.readers)
        row["source"] = ";".join(sorted(sources))
        row["model_version"] = ";".join(
            self.models[m].label for m in item.model_version_ids if m in self.models
        )
        regions = [
            {
                "task": r.task,
                "box": [r.x0, r.y0, r.x1, r.y1],
                "value": r.value,
                "reader": self.reader(r.reader),
            }
            for r in item.regions
        ]
        row["regions"] = regions
        if self.options.with_ai:
            row.update(tabular.ai_columns(self.tasks, item))
        if self.options.with_reads:
            row.update(tabular.read_columns(self.tasks, item, self.reader))
        row["measurements"] = tabular.measurements_text(item.measurements)
        row["measurement_list"] = [
            m.to_json() | {"reader": self.reader(m.reader)} for m in item.measurements
        ]
        return row

    def write_dicom_objects(
        self, staging: Staging, record: ExportRecord, ds: pydicom.Dataset
    ) -> None:
        formats = [f for f in self.options.formats if f in DICOM_FORMATS]
        if not formats:
            return
        if frame_count(ds) > 1 or record.item.frame:
            self.skip("DICOM objects skipped (multi-frame source)")
            return
        # highdicom is imported only by exports that write DICOM objects
        from skelex_desktop.core.export.dicom_writers import DicomContext
        from skelex_desktop.core.export.dicom_writers import build as build_dicom

        context = DicomContext(
            self.tasks, self.models, self.series, self.reader, self.error_map_path, self.skip
        )
        for kind in formats:
            self.instances[kind] += 1
            written = build_dicom(kind, context, record, ds, self.instances[kind])
            if written is None:
                self.instances[kind] -= 1
                continue
            staging.write(f"dicom/{kind.removeprefix('dicom-')}/{record.stem}.dcm", written)

    def unwritable(self, item: ExportItem, exc: Exception) -> str:
        """Why an image was left out: its source could not be written as DICOM (the file is
        named only when not de-identifying: its name may identify the patient)."""
        what = "a source" if self.deid else Path(item.file_path).name
        return f"not exported: {what} cannot be written as DICOM ({exc})"

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def error_map_path(self, raw: str) -> Path:
        path = Path(raw)
        if not path.is_absolute() and self.data_dir is not None:
            path = self.data_dir / path
        return path

    # -- whole export ----------------------------------------------------------------------
    def table_files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        rows = [r.row for r in self.records]
        formats = self.options.formats
        if "csv" in formats:
            readers = sorted(
                {self.reader(r) for i in self.items for t in i.reads.values() for r in t}
            )
            header = tabular.columns(self.tasks, self.deid is None, self.options.with_ai, readers)
            files["labels.csv"] = tabular.to_csv(rows, header)
            study_tasks = [t.name for t in self.tasks if t.scope == "study"]
            if study_tasks:  # a study-scoped decision once per study, beside the image rows
                studies = tabular.study_rows(rows, study_tasks)
                files["studies.csv"] = tabular.to_csv(studies, tabular.STUDY_COLUMNS + study_tasks)
        if "jsonl" in formats:
            files["labels.jsonl"] = tabular.to_jsonl(rows)
        self.notes += detection_notes(self.records, self.tasks, formats)
        if "coco" in formats:
            files.update(coco_files(self.records, self.tasks))
        if "yolo" in formats:
            files.update(yolo_files(self.records, self.tasks))
        if "hf" in formats:
            files.update(hf_files(self.records, self.tasks))
        return files

    def manifest(self, plan: SplitPlan, files: dict[str, str]) -> dict[str, Any]:
        selection = self.options.selection.to_json()
        if self.deid and selection["reader"]:
            selection["reader"] = self.reader(str(selection["reader"]))
        per_split_images = {s: sum(1 for r in self.records if r.split == s) for s in SPLITS}
        per_split_patients = {
            s: len({r.item.patient_pk for r in self.records if r.split == s}) for s in SPLITS
        }
        return {
            "manifest_version": MANIFEST_VERSION,
            "tool": "SKELEX Desktop",
            "tool_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "formats": list(self.options.formats),
            "images": self.options.image_mode,
            "include_burned_in": self.options.include_burned_in,
            "selection": selection,
            "counts": {
                "images": len(self.records),
                "patients": len(self.patient_codes),
                "regions": sum(len(r.item.regions) for r in self.records),
            },
            "split": {
                "seed": plan.seed,
                "fractions": dict(zip(SPLITS, plan.fractions, strict=True)),
                "level": "patient",
                "stratify_by": plan.stratify_by,
                "strata": plan.strata,
                "patients": per_split_patients,
                "images": per_split_images,
            },
            "schema": [t.to_json() for t in self.tasks],
            "model_versions": [m.to_json() for m in self.models.values()],
            "deidentification": self.deid_json(),
            "png_values": self.png_values,
            "warnings": self.warnings,
            "notes": self.notes,
            "files": files,
        }

    def deid_json(self) -> dict[str, Any] | None:
        if self.deid is None:
            return None
        return {
            "method": self.deid.method,
            "profile": [{"code": c, "meaning": m} for c, m in PROFILE_CODES],
            "pseudonyms": "patients P0001.., readers R01..; consistent within this export only",
            "uids": "remapped consistently within this export",
            "dates": "shifted by one secret offset per export (intervals are kept)",
            "verified": "no original identifying value found in any exported file",
        }


def _describe(findings: list[phi_scan.Finding]) -> str:
    more = f" (and {len(findings) - 1} more file(s))" if len(findings) > 1 else ""
    return f"de-identification check failed: {findings[0].describe()}{more}; nothing was exported"


def export_labelled_set(
    db: Database,
    options: ExportOptions,
    progress: Progress | None = None,
    data_dir: Path | None = None,
) -> ExportResult:
    """Write the export described by `options`; raises ExportError or Cancelled, leaving nothing.

    `data_dir` resolves relative error-map paths of predictions.
    """
    options.validate()
    out = Path(options.out).expanduser().absolute()
    check_target(out)
    if progress is not None:
        progress.set_status("selecting images")
    with db.read() as session:
        chosen = select_items(
            session, options.selection, options.with_ai, with_reads=options.with_reads
        )
    if not chosen.items:
        filters = ", ".join(
            f"{k} {', '.join(v) if isinstance(v, list) else v}"
            for k, v in options.selection.to_json().items()
            if v
        )
        raise ExportError(
            f"nothing to export: no image with labels matches the selection ({filters}); "
            "widen it (e.g. --status any) or label and confirm images first"
        )
    run = _Run(options, chosen, data_dir)
    run.read_headers(progress)
    if not run.items:
        raise ExportError("nothing to export: every selected image has burned-in annotation")
    run.assign_codes()
    plan = plan_split(run.items, run.tasks, options.split, options.seed)
    with Staging(out) as staging:
        if progress is not None:
            progress.set_total(len(run.items))
            progress.set_status("writing images and labels")
        for n, item in enumerate(run.items, start=1):
            check(progress)
            run.write_item(staging, item, n, plan)
            if progress is not None:
                progress.advance(current=f"image {n}/{len(run.items)}")
        for rel, data in run.table_files().items():
            staging.write(rel, data)
        run.notes += [f"{count} image(s): {reason}" for reason, count in run.skipped.items()]
        assert staging.path is not None
        hashes = hash_tree(staging.path, progress)
        staging.write(MANIFEST, manifest_bytes(run.manifest(plan, hashes)))
        if run.deid is not None:
            found = identities.collect(run.items, run.headers)
            findings = phi_scan.scan_tree(staging.path, found, progress)
            if findings:
                raise ExportError(_describe(findings))
        check(progress)
        final = staging.commit()
    per_split = {s: sum(1 for r in run.records if r.split == s) for s in SPLITS}
    return ExportResult(
        final,
        len(run.records),
        len(run.patient_codes),
        len(hashes) + 1,
        per_split,
        run.warnings,
        run.notes,
    )
