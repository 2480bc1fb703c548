"""What an export is asked to do: the selection, the formats, the split and the safeguards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from skelex_desktop.core.domain import ImageStatus

FORMATS = ("csv", "jsonl", "coco", "yolo", "hf", "dicom-sr", "dicom-pm", "dicom-seg")
DICOM_FORMATS = ("dicom-sr", "dicom-pm", "dicom-seg")
IMAGE_MODES = ("png16", "png8", "dicom", "none")
ML_IMAGE_FORMATS = ("yolo", "hf")  # read by 8-bit image loaders: png8 unless asked otherwise
SPLITS = ("train", "val", "test")
STATUS_ANY = "any"
STATUSES = (*(s.value for s in ImageStatus), STATUS_ANY)


class ExportError(ValueError):
    """An export that cannot be made (or was refused); the message is one line for users."""


@dataclass(frozen=True)
class Selection:
    """Which images and labels go into the export.

    `status` is the image workflow status (`confirmed` by default; `any` for every status).
    `tasks` empty means every task of the schema. `reader` keeps only that reader's labels and
    regions. `date_from`/`date_to` bound the study date (inclusive). `model_version` keeps images
    that have a prediction of that model version (`name`, `version` or `name:version`).
    """

    tasks: tuple[str, ...] = ()
    status: str = ImageStatus.CONFIRMED.value
    reader: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    model_version: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "tasks": list(self.tasks),
            "status": self.status,
            "reader": self.reader,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class ExportOptions:
    """A whole export request. `images=None` picks png8 when YOLO or HF is among the formats
    (their loaders read 8-bit images), `dicom` for DICOM-only exports, else png16."""

    out: Path
    formats: tuple[str, ...]
    selection: Selection = field(default_factory=Selection)
    deidentify: bool = False
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    images: str | None = None
    include_burned_in: bool = False
    with_ai: bool = False  # the AI's suggestions in CSV/JSONL, beside (never in) the label columns
    with_reads: bool = False  # each reader's reads in CSV/JSONL (<task>__<reader>), beside them

    @property
    def image_mode(self) -> str:
        if self.images is not None:
            return self.images
        if any(f in ML_IMAGE_FORMATS for f in self.formats):
            return "png8"
        return "dicom" if set(self.formats) <= set(DICOM_FORMATS) else "png16"

    def warnings(self) -> list[str]:
        """What the user asked for that works, but not the way most tools expect."""
        if "hf" in self.formats and self.image_mode == "png16":
            return [
                "hf with --images png16: PIL opens these images as mode I;16 and the usual "
                '.convert("RGB") saturates them (mostly white); read them with np.asarray(image) '
                "and apply your own window, or export with the default png8"
            ]
        return []

    def validate(self) -> None:
        """Raise ExportError naming the first inconsistent option."""
        if not self.formats:
            raise ExportError("choose at least one export format")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise ExportError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
        if self.image_mode not in IMAGE_MODES:
            raise ExportError(f"--images must be one of {', '.join(IMAGE_MODES)}")
        if self.selection.status not in STATUSES:
            raise ExportError(f"status must be one of {', '.join(STATUSES)}")
        if len(self.split) != 3 or any(f < 0 for f in self.split) or sum(self.split) <= 0:
            raise ExportError("the split needs three non-negative fractions (train, val, test)")
        if abs(sum(self.split) - 1.0) > 1e-6:
            raise ExportError(f"split fractions must add up to 1, not {sum(self.split):g}")
        needs_png = [f for f in self.formats if f in ML_IMAGE_FORMATS]
        if needs_png and self.image_mode not in ("png16", "png8"):
            raise ExportError(f"format {needs_png[0]} needs --images png8 (default) or png16")
        if "yolo" in self.formats and self.image_mode == "png16":
            raise ExportError(
                "format yolo needs --images png8 (its default): ultralytics reads images with "
                "cv2.imread, which keeps only the high byte of 16-bit values (a 12-bit "
                "radiograph becomes black)"
            )
        sel = self.selection
        if self.with_reads and sel.reader:
            raise ExportError(
                "--reads adds every reader's reads beside the final labels, --reader exports one "
                "reader's labels instead: choose one"
            )
        if sel.date_from and sel.date_to and sel.date_from > sel.date_to:
            raise ExportError("the date range is empty: --from is after --to")


def parse_formats(text: str) -> tuple[str, ...]:
    """`"csv,coco"` -> ("csv", "coco"), in the given order without repeats."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(names))


def parse_split(text: str) -> tuple[float, float, float]:
    """`"0.7,0.15,0.15"` -> fractions; also accepts percentages such as `"70,15,15"`."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError as exc:
        raise ExportError(f"split {text!r} is not three numbers such as 0.7,0.15,0.15") from exc
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ExportError(f"split {text!r} is not three non-negative numbers")
    total = sum(parts)
    if abs(total - 1.0) > 1e-6 and abs(total - 100.0) > 1e-6:
        raise ExportError(f"split {text!r} must add up to 1 (or 100)")
    return (parts[0] / total, parts[1] / total, parts[2] / total)
