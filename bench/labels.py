"""Label import benchmark; prints figures and ratios (nothing here asserts timings).

A workspace of `--images` images (bulk-inserted, as in bench/ingest.py) and a label CSV of
`--rows` rows naming them by SOP Instance UID, file path or image id, over binary, ordinal and
multiclass tasks, with a reader column, rows that supersede earlier rows of the file and rows
that supersede labels already stored. Printed:

1. rows/s of `label import`'s core (`import_labels_csv`, one transaction, audit rows), and its
   time as a ratio to a plain `csv.reader` loop over the same file (best of three);
   Both in wall time and in CPU time of this process (the machine may be shared: the load
   average is printed);
2. the time until a file whose last row is bad is refused (every row checked, nothing stored);
3. peak Python memory (tracemalloc) of imports of `--rows / 8` and `--rows / 2` rows: bounded
   when the two are close (the transaction itself lives in SQLite's page cache and WAL file);
4. how many progress reports an import gave.

Run: `.venv/bin/python bench/labels.py [--rows 200000] [--images 100000]`
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import func, insert, select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent, Image, Label, Patient, Series, Study
from skelex_desktop.core.progress import RecordingProgress
from skelex_desktop.core.review.label_import import import_labels_csv
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace

TARGET_ROWS_PER_S = 20_000
TASK_VALUES = {
    "fracture": ["0", "1", "fracture", "no fracture"],
    "kl_grade": ["0", "1", "2", "3", "4"],
    "tumour_category": ["benign", "malignant"],
}


def populate(db: Database, images: int) -> None:
    with db.write() as session:
        session.execute(insert(Patient), [{"id": 1, "patient_id": "P1", "name": "B^P", "sex": ""}])
        session.execute(
            insert(Study),
            [{"id": 1, "patient_id": 1, "study_instance_uid": "1.2", "description": ""}],
        )
        session.execute(
            insert(Series),
            [{"id": 1, "study_id": 1, "series_instance_uid": "1.2.1", "modality": "CR"}],
        )
        session.execute(
            insert(Image),
            [
                {
                    "id": i + 1,
                    "series_id": 1,
                    "sop_instance_uid": f"1.3.{i}",
                    "frame": 0,
                    "file_path": f"/data/{i}.dcm",
                    "content_hash": f"{i:064x}",
                    "rows": 2000,
                    "cols": 2500,
                }
                for i in range(images)
            ],
        )
    for i in range(0, min(images, 200)):  # labels already stored, superseded by the file
        confirm_label(db, i + 1, "fracture", 1, "dr.before")


def write_csv(path: Path, rows: int, images: int, bad_last: bool = False) -> None:
    rng = random.Random(7)
    tasks = list(TASK_VALUES)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["image", "image_id", "task", "value", "uncertain", "reader"])
        for n in range(rows):
            i = rng.randrange(images)
            kind = n % 10
            image = f"/data/{i}.dcm" if kind == 0 else ("" if kind == 1 else f"1.3.{i}")
            image_id = str(i + 1) if kind == 1 else ""
            task = tasks[n % len(tasks)]
            uncertain = "yes" if n % 50 == 0 else ""
            reader = "" if n % 3 else f"dr.{n % 7}"
            out.writerow([image, image_id, task, rng.choice(TASK_VALUES[task]), uncertain, reader])
        if bad_last:
            out.writerow(["1.3.0", "", "fracture", "maybe", "", ""])


def plain_csv_read(path: Path) -> tuple[float, float]:
    """Best wall and CPU seconds of three plain `csv.reader` loops over the file."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        with path.open(newline="", encoding="utf-8") as handle:
            for _row in csv.reader(handle):
                pass
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu


def fresh_workspace(folder: Path, images: int) -> Database:
    ws = open_workspace(Settings(data_dir=folder, reader="bench"))
    populate(ws.db, images)
    return ws.db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--images", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skelex-bench-labels-") as tmp:
        root = Path(tmp)
        good, bad = root / "labels.csv", root / "bad_last.csv"
        write_csv(good, args.rows, args.images)
        write_csv(bad, args.rows, args.images, bad_last=True)
        baseline, baseline_cpu = plain_csv_read(good)

        db = fresh_workspace(root / "a", args.images)
        progress = RecordingProgress()
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), time.process_time()
        result = import_labels_csv(db, good, "bench", progress)
        ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
        with db.read() as s:
            stored = s.scalar(select(func.count(Label.id)))
            audits = s.scalar(select(func.count(AuditEvent.id)))
        db.dispose()
        assert result.imported == args.rows and not result.errors, result.errors[:3]

        db = fresh_workspace(root / "b", args.images)
        start = time.perf_counter()
        refused = import_labels_csv(db, bad, "bench")
        refusal = time.perf_counter() - start
        db.dispose()

        peaks = []
        for fraction in (8, 2):
            sub = root / f"part{fraction}.csv"
            write_csv(sub, args.rows // fraction, args.images)
            db = fresh_workspace(root / f"m{fraction}", args.images)
            tracemalloc.start()
            import_labels_csv(db, sub, "bench")
            peaks.append((args.rows // fraction, tracemalloc.get_traced_memory()[1] / 2**20))
            tracemalloc.stop()
            db.dispose()

    print(f"label import: {args.rows} rows over {args.images} images (load average {load:.1f})")
    print(f"  plain csv.reader loop:  {args.rows / baseline:10.0f} rows/s")
    print(
        f"  import_labels_csv:      {args.rows / ours:10.0f} rows/s wall, "
        f"{args.rows / ours_cpu:.0f} rows/s of CPU time (target >= {TARGET_ROWS_PER_S}; "
        f"{stored} label rows, {audits} audit rows in the db)"
    )
    print(
        f"  ratio import/plain csv read: {ours / baseline:.0f} wall, "
        f"{ours_cpu / baseline_cpu:.0f} CPU time (lower is better)"
    )
    print(
        f"  bad last row refused after {refusal:.1f} s: {refused.errors} "
        f"(imported {refused.imported})"
    )
    for rows, peak in peaks:
        print(f"  peak Python memory, {rows:>7} rows: {peak:6.1f} MiB")
    print(f"  progress reports: {progress.done} of {progress.total} lines counted")


if __name__ == "__main__":
    main()
