"""Patient-level train/val/test split: seeded, stratified by a classification task.

All images of a patient land in one split. Patients are grouped into strata by their label of the
stratifying task (binary: positive if any image is positive; multi-class: the most frequent
class); each stratum is shuffled with the seed, and the strata are dealt out one after the other,
each patient to the split furthest below its share (systematic allocation). The whole set
follows the fractions within one patient, and each stratum is spread in the same proportions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from skelex_desktop.core.export.options import SPLITS
from skelex_desktop.core.export.selection import ExportItem, TaskInfo

CLASSIFICATION = ("binary", "multiclass", "ordinal")


@dataclass
class SplitPlan:
    """The split of each patient (by database key) and how it was drawn."""

    by_patient: dict[int, str]
    seed: int
    fractions: tuple[float, float, float]
    stratify_by: str | None
    strata: dict[str, dict[str, int]]

    def split_of(self, item: ExportItem) -> str:
        return self.by_patient[item.patient_pk]


def stratify_task(tasks: list[TaskInfo], items: list[ExportItem]) -> TaskInfo | None:
    """The first classification task of the selection that has labels."""
    for task in tasks:
        if task.kind in CLASSIFICATION and any(task.name in i.labels for i in items):
            return task
    return None


def _patient_stratum(task: TaskInfo | None, items: list[ExportItem]) -> str:
    if task is None:
        return "all"
    labels = [i.labels[task.name] for i in items if task.name in i.labels]
    if not labels:
        return "unlabelled"
    if task.kind == "binary":
        if any(lab.value == 1 and not lab.uncertain for lab in labels):
            return "1"
        if any(lab.uncertain for lab in labels):
            return "-1"
        return "0"
    counts = Counter("uncertain" if lab.uncertain else str(lab.value) for lab in labels)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def plan_split(
    items: list[ExportItem], tasks: list[TaskInfo], fractions: tuple[float, float, float], seed: int
) -> SplitPlan:
    """Assign every patient of `items` to train, val or test."""
    task = stratify_task(tasks, items)
    per_patient: dict[int, list[ExportItem]] = defaultdict(list)
    for item in items:
        per_patient[item.patient_pk].append(item)
    strata: dict[str, list[int]] = defaultdict(list)
    for pk in sorted(per_patient):
        strata[_patient_stratum(task, per_patient[pk])].append(pk)
    rng = np.random.default_rng(seed)
    shares = np.asarray(fractions, dtype=float)
    assigned = np.zeros(3)
    by_patient: dict[int, str] = {}
    summary: dict[str, dict[str, int]] = {}
    for key in sorted(strata):
        patients = list(strata[key])
        rng.shuffle(patients)
        local = np.zeros(3)
        for pk in patients:
            # systematic allocation: the split furthest below its share of all patients so far;
            # strata are dealt one after the other, so each is spread in the same proportions
            deficit = shares * (assigned.sum() + 1) - assigned
            choice = int(np.argmax(np.where(shares > 0, deficit, -np.inf)))
            local[choice] += 1
            assigned[choice] += 1
            by_patient[pk] = SPLITS[choice]
        summary[key] = {name: int(local[i]) for i, name in enumerate(SPLITS)}
    return SplitPlan(by_patient, seed, fractions, task.name if task else None, summary)
