"""Small value types shared by every layer (no storage, no Qt)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# The AUROC below which a model output is shown with a caveat and never accepted by a bare
# Enter: task heads (cross-validated) and error maps (on their calibration set).
MIN_RELIABLE_AUROC = 0.70


class ImageStatus(enum.StrEnum):
    """Where an image stands in the review workflow (worklist column)."""

    NEW = "new"
    ANALYSED = "analysed"
    IN_REVIEW = "in_review"
    CONFIRMED = "confirmed"


class LabelSource(enum.StrEnum):
    """Who produced a label value: a model or a human reader."""

    AI = "ai"
    HUMAN = "human"


class PredictionRelation(enum.StrEnum):
    """How a human label relates to the AI prediction shown to the reader."""

    NONE = "none"
    CONFIRMED = "confirmed"
    OVERRODE = "overrode"


class TaskKind(enum.StrEnum):
    """The shape of a task's answer in the label schema."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    ORDINAL = "ordinal"
    REGRESSION = "regression"
    REGION = "region"


class Calibration(enum.StrEnum):
    """How trustworthy an image's pixel spacing is for measurements."""

    CALIBRATED = "calibrated"  # PixelSpacing: spacing at the patient
    DETECTOR = "detector"  # ImagerPixelSpacing: spacing at the detector (magnified)
    UNCALIBRATED = "uncalibrated"


class ImportOutcome(enum.StrEnum):
    """The fate of one file in an import job."""

    IMPORTED = "imported"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    FAILED = "failed"


class JobState(enum.StrEnum):
    """Life cycle of an import job."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass
class Changes:
    """What a core operation changed, so a UI knows what to refresh."""

    images: set[int] = field(default_factory=set)
    labels: set[int] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    worklist: bool = False

    def merge(self, other: Changes) -> Changes:
        self.images |= other.images
        self.labels |= other.labels
        self.tasks |= other.tasks
        self.worklist = self.worklist or other.worklist
        return self
