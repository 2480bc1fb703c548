"""What durable commits cost: SQLite `synchronous=FULL` against `NORMAL`, as ratios.

In WAL mode, NORMAL syncs the log only at checkpoints, so the last commits before a power loss
can be lost; FULL syncs the log at every commit. Measured here on the real code paths:

1. Decisions: `confirm_label`, one committed transaction per decision (what the window's writer
   does for every key press), on a database of 200 imported images.
2. Import: `import_paths` of N small DICOM files (one process, so the decode noise is small),
   whose batches are one transaction each.

Each figure is the median of several alternating rounds, in a temporary folder on the disk the
data dir would live on (`--dir`). Printed as FULL / NORMAL (1.0 = no cost); nothing asserts.

Run: `.venv/bin/python bench/durability.py [--decisions 300] [--files 200] [--rounds 5] [--dir D]`
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # workers (if any) re-run this file: heavy imports here only
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    from sqlalchemy import select

    from skelex_desktop.core.db.engine import Database
    from skelex_desktop.core.db.models import Image
    from skelex_desktop.core.ingest import ImportOptions, import_paths
    from skelex_desktop.core.review.labels import confirm_label
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

CR = "1.2.840.10008.5.1.4.1.1.1"


def write_dicoms(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CR
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CR, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.PatientID, ds.Modality = f"P{i % 40:03d}", "CR"
        ds.Rows = ds.Columns = 128
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = rng.integers(0, 4096, (128, 128), dtype=np.uint16).tobytes()
        path = folder / f"{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def fresh_workspace(root: Path, name: str) -> Settings:
    settings = Settings(data_dir=root / name, reader="bench")
    open_workspace(settings).close()  # created, migrated and seeded (FULL, as the app does)
    return settings


def time_import(root: Path, files: list[Path], synchronous: str, round_no: int) -> float:
    settings = fresh_workspace(root, f"import-{synchronous}-{round_no}")
    db = Database(settings.database_url, synchronous=synchronous)
    try:
        start = time.perf_counter()
        report = import_paths(db, files, ImportOptions(data_dir=settings.data_dir, workers=1))
        elapsed = time.perf_counter() - start
        assert report.imported == len(files), report.summary()
    finally:
        db.dispose()
    return elapsed


def time_decisions(root: Path, files: list[Path], synchronous: str, n: int, round_no: int) -> float:
    settings = fresh_workspace(root, f"decide-{synchronous}-{round_no}")
    db = Database(settings.database_url, synchronous=synchronous)
    try:
        import_paths(db, files, ImportOptions(data_dir=settings.data_dir, workers=1))
        with db.read() as session:
            ids = session.scalars(select(Image.id).order_by(Image.id)).all()
        start = time.perf_counter()
        for i in range(n):
            confirm_label(db, ids[i % len(ids)], "fracture", i % 2, "bench")
        elapsed = time.perf_counter() - start
    finally:
        db.dispose()
    return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary data goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skelex-durability-", dir=args.dir) as tmp:
        root = Path(tmp)
        source = root / "source"
        source.mkdir()
        files = write_dicoms(source, args.files)
        decide: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
        imports: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
        for round_no in range(args.rounds):
            order = ("NORMAL", "FULL") if round_no % 2 == 0 else ("FULL", "NORMAL")
            for mode in order:
                decide[mode].append(time_decisions(root, files, mode, args.decisions, round_no))
                imports[mode].append(time_import(root, files, mode, round_no))
    d_normal, d_full = (statistics.median(decide[m]) * 1000 for m in ("NORMAL", "FULL"))
    i_normal, i_full = (args.files / statistics.median(imports[m]) for m in ("NORMAL", "FULL"))
    print(f"disk: {args.dir or tempfile.gettempdir()}; median of {args.rounds} rounds")
    print(
        f"decision (one committed transaction): NORMAL {d_normal:.2f} ms, FULL {d_full:.2f} ms"
        f"  -> FULL/NORMAL time {d_full / d_normal:.2f}"
    )
    print(
        f"import of {args.files} files (1 process): NORMAL {i_normal:.0f} files/s, "
        f"FULL {i_full:.0f} files/s  -> FULL/NORMAL throughput {i_full / i_normal:.2f}"
    )


if __name__ == "__main__":
    main()
