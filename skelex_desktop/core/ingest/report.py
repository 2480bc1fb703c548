"""Options and results of an import job (the public face of the importer)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelex_desktop.core.domain import ImportOutcome, JobState


@dataclass
class ImportOptions:
    """How to import: `copy` files into `data_dir/store`, credit `reader`, use `workers`
    decoding processes (None: one per CPU core; 1: decode in this process)."""

    data_dir: Path
    copy: bool = False
    reader: str = ""
    workers: int | None = None
    batch_size: int = 200

    def worker_count(self) -> int:
        if self.workers is not None:
            return max(1, int(self.workers))
        return max(1, os.cpu_count() or 1)


@dataclass
class FileResult:
    """The fate of one file: its outcome, a reason for anything but a clean import, and the
    ids of the images it produced (or already had, for a duplicate)."""

    path: str
    outcome: ImportOutcome
    reason: str = ""
    image_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "image_ids": list(self.image_ids),
        }


@dataclass
class ImportReport:
    """What an import job did, file by file, with totals per outcome."""

    job_id: int
    state: JobState = JobState.RUNNING
    files: list[FileResult] = field(default_factory=list)
    images_added: int = 0

    def _count(self, outcome: ImportOutcome) -> int:
        return sum(1 for result in self.files if result.outcome == outcome)

    @property
    def imported(self) -> int:
        return self._count(ImportOutcome.IMPORTED)

    @property
    def duplicates(self) -> int:
        return self._count(ImportOutcome.DUPLICATE)

    @property
    def skipped(self) -> int:
        return self._count(ImportOutcome.SKIPPED)

    @property
    def failed(self) -> int:
        return self._count(ImportOutcome.FAILED)

    def summary(self) -> str:
        return (
            f"imported {self.imported}, duplicates {self.duplicates}, "
            f"skipped {self.skipped}, failed {self.failed}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "state": str(self.state),
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "failed": self.failed,
            "images_added": self.images_added,
            "files": [result.to_json() for result in self.files],
        }
