"""What the AI changed: per reader, task and model version, how the readers' current decisions
relate to the suggestion they were shown, and how long a reader spends per image.

A decision stores the prediction shown with it and whether it confirmed or overrode it (derived
from the prediction when it was stored, never trusted from a front end), so:
- *accepted*: the decision equals the suggestion shown; *overridden*: it differs; *uncertain*: the
  reader marked the task uncertain while a suggestion was shown; *no suggestion*: nothing shown.
- *agreement*: accepted / (accepted + overridden), the share of final decisions that agree with
  the AI where the AI had a say (uncertain decisions have no value to agree with).
- *median seconds per image*: the median gap between a reader's consecutive image confirmations
  (the audit trail's `image.confirm`), leaving out gaps over `BREAK_SECONDS` (a pause, not
  reading). Each reader's own final decision per (image, task) counts, also where another
  reader decided later; undone decisions and those the same reader replaced are history.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from skelex_desktop.core.db.models import AuditEvent, Label, ModelVersion, Prediction, Task
from skelex_desktop.core.domain import LabelSource, PredictionRelation

BREAK_SECONDS = 600.0
NO_MODEL = "-"


@dataclass
class InfluenceRow:
    """One (reader, task, model version) group of final decisions."""

    reader: str
    task: str
    model: str  # "name version" of the suggesting model, NO_MODEL when none was shown
    decisions: int = 0
    accepted: int = 0
    overridden: int = 0
    uncertain: int = 0
    no_suggestion: int = 0

    @property
    def shown(self) -> int:
        return self.accepted + self.overridden + self.uncertain

    @property
    def agreement(self) -> float | None:
        decided = self.accepted + self.overridden
        return self.accepted / decided if decided else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"shown": self.shown, "agreement": self.agreement}


@dataclass
class InfluenceReport:
    """The rows, and each reader's median seconds per confirmed image."""

    rows: list[InfluenceRow]
    seconds_per_image: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [row.to_json() for row in self.rows],
            "median_seconds_per_image": self.seconds_per_image,
            "break_seconds": BREAK_SECONDS,
        }


def influence_report(session: Session) -> InfluenceReport:
    """The AI-influence report over every reader's final human decisions."""
    final = (
        select(func.max(Label.id).label("id"))
        .where(Label.retracted_at.is_(None), Label.source == LabelSource.HUMAN.value)
        .group_by(Label.reader, Label.image_id, Label.task_id)
        .subquery()
    )
    suggested = aliased(Prediction)
    query = (
        select(
            Label.reader,
            Task.name,
            Label.prediction_id,
            Label.uncertain,
            Label.prediction_relation,
            ModelVersion.name,
            ModelVersion.version,
        )
        .join(Task, Label.task_id == Task.id)
        .outerjoin(suggested, Label.prediction_id == suggested.id)
        .outerjoin(ModelVersion, suggested.model_version_id == ModelVersion.id)
        .join(final, Label.id == final.c.id)
    )
    groups: dict[tuple[str, str, str], InfluenceRow] = {}
    for reader, task, shown, uncertain, relation, model, version in session.execute(query):
        name = NO_MODEL if shown is None else f"{model} {version}"
        row = groups.get((reader, task, name))
        if row is None:
            row = groups[(reader, task, name)] = InfluenceRow(reader, task, name)
        row.decisions += 1
        if shown is None:
            row.no_suggestion += 1
        elif uncertain:
            row.uncertain += 1
        elif relation == PredictionRelation.CONFIRMED:
            row.accepted += 1
        else:
            row.overridden += 1
    rows = sorted(groups.values(), key=lambda r: (r.reader, r.task, r.model))
    return InfluenceReport(rows, _seconds_per_image(session))


def _seconds_per_image(session: Session) -> dict[str, float | None]:
    times: dict[str, list[float]] = defaultdict(list)
    confirmations = session.execute(
        select(AuditEvent.who, AuditEvent.at)
        .where(AuditEvent.action == "image.confirm")
        .order_by(AuditEvent.who, AuditEvent.at, AuditEvent.id)
    )
    for who, at in confirmations:
        times[who].append(at.timestamp())
    out: dict[str, float | None] = {}
    for who, stamps in sorted(times.items()):
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b - a <= BREAK_SECONDS]
        out[who] = statistics.median(gaps) if gaps else None
    return out
