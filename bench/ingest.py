"""Ingest and worklist benchmark; prints figures and ratios (nothing here asserts timings).

1. Import throughput: N synthetic 512x512 16-bit DICOM files (half uncompressed, half JPEG 2000
   lossless, or RLE when no JPEG 2000 encoder is installed) imported with the database and
   thumbnails, divided by a single-process `dcmread` + `pixel_array` loop over the same files.
2. Worklist on 100k images bulk-inserted into a temporary SQLite: first page, a filter, a sort,
   each divided by its target time (ratio <= 1 meets the target).

Run: `.venv/bin/python bench/ingest.py [--files 500] [--images 100000]`
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

# Decoding workers (forkserver) re-run this file as `__mp_main__`; the heavy imports are for
# the benchmark process only, so the workers start as light as under the app's own entry
# point (`skelex-desktop`, which imports nothing heavy at start-up).
if __name__ == "__main__":
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.pixels import get_encoder, pixel_array
    from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid
    from sqlalchemy import insert, text

    from skelex_desktop.core.db.models import Image, Patient, Series, Study
    from skelex_desktop.core.ingest import ImportOptions, import_paths
    from skelex_desktop.core.ingest.importer import refresh_statistics
    from skelex_desktop.core.review.worklist import WorklistQuery, query_worklist
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

CR = "1.2.840.10008.5.1.4.1.1.1"
TARGETS_MS = {"first page": 100.0, "filter": 50.0, "sort": 50.0, "text search": 50.0}


def _dataset(rng: np.random.Generator, index: int) -> Dataset:
    yy, xx = np.mgrid[0:512, 0:512]
    pixels = (1000 + 2000 * np.exp(-((xx - 256) ** 2 + (yy - 256) ** 2) / 20000.0)).astype(
        np.uint16
    )
    pixels += rng.integers(0, 64, size=pixels.shape, dtype=np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CR, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality, ds.BodyPartExamined = f"B{index % 50:03d}", "CR", "HAND"
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    return ds


def make_files(folder: Path, count: int) -> str:
    """Write `count` files; returns the compressed syntax used for the other half."""
    syntax = JPEG2000Lossless if get_encoder(JPEG2000Lossless).is_available else RLELossless
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        ds = _dataset(rng, i)
        if i % 2:
            ds.compress(syntax)
        ds.save_as(folder / f"f{i:04d}.dcm", enforce_file_format=True)
    return syntax.name


def raw_loop(files: list[Path], plugin: str = "") -> float:
    """Seconds for a bare dcmread + pixel array loop (`plugin` "" = pydicom's own choice)."""
    start = time.perf_counter()
    for path in files:
        pixel_array(pydicom.dcmread(path), decoding_plugin=plugin)
    return time.perf_counter() - start


def cpu_per_wall(files: list[Path]) -> float:
    """How many cores the default raw loop keeps busy (GDCM decodes JPEG 2000 threaded)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = raw_loop(files)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu / wall if wall > 0 else 0.0


def bench_import(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="skelex-bench-") as tmp:
        folder = Path(tmp) / "files"
        syntax = make_files(folder, count)
        files = sorted(folder.iterdir())
        raw_loop(files[:10])  # warm caches and imports
        raw = raw_loop(files)
        raw_single = raw_loop(files, "pylibjpeg")
        cores = cpu_per_wall(files)
        data_dir = Path(tmp) / "data"
        ws = open_workspace(Settings(data_dir=data_dir, reader="bench"))
        try:
            start = time.perf_counter()
            report = import_paths(ws.db, [folder], ImportOptions(data_dir=data_dir))
            ours = time.perf_counter() - start
            start = time.perf_counter()
            again = import_paths(ws.db, [folder], ImportOptions(data_dir=data_dir))
            repeat = time.perf_counter() - start
        finally:
            ws.close()
        print(f"import: {count} files (half uncompressed, half {syntax}), {os.cpu_count()} cores")
        print(f"  raw dcmread+pixel_array loop: {count / raw:7.1f} files/s")
        print(f"  import_paths (db+thumbnails):  {count / ours:7.1f} files/s  [{report.summary()}]")
        print(f"  ratio import/raw: {raw / ours:.2f}  (target >= 1.5)")
        print(f"    (the raw loop keeps {cores:.2f} cores busy: pydicom picks GDCM, which decodes")
        print("     JPEG 2000 on several threads)")
        print(
            f"  raw loop with a single-threaded decoder (pylibjpeg): {count / raw_single:7.1f} files/s"
        )
        print(f"  ratio import/raw single-threaded: {raw_single / ours:.2f}")
        print(f"  re-import (all duplicates): {count / repeat:7.1f} files/s  [{again.summary()}]")


def populate(db, images: int) -> None:  # noqa: ANN001 - Database
    rng = random.Random(1)
    patients = max(1, images // 10)
    studies = max(1, images // 4)
    with db.write() as session:
        session.execute(
            insert(Patient),
            [
                {"id": i + 1, "patient_id": f"P{i:07d}", "name": f"Name{i % 997}^X", "sex": ""}
                for i in range(patients)
            ],
        )
        session.execute(
            insert(Study),
            [
                {
                    "id": i + 1,
                    "patient_id": rng.randint(1, patients),
                    "study_instance_uid": f"1.2.{i}",
                    "study_date": date(2015, 1, 1) + timedelta(days=rng.randint(0, 3650)),
                    "accession_number": f"A{i:08d}",
                    "description": "",
                }
                for i in range(studies)
            ],
        )
        session.execute(
            insert(Series),
            [
                {
                    "id": i + 1,
                    "study_id": i + 1,
                    "series_instance_uid": f"1.2.{i}.1",
                    "modality": "CR",
                    "description": "",
                }
                for i in range(studies)
            ],
        )
        session.execute(
            insert(Image),
            [
                {
                    "series_id": rng.randint(1, studies),
                    "sop_instance_uid": f"1.3.{i}",
                    "frame": 0,
                    "file_path": f"/data/{i}.dcm",
                    "content_hash": f"{i:064x}",
                    "rows": 2000,
                    "cols": 2500,
                    "modality": rng.choice(["CR", "DX"]),
                    "body_part": rng.choice(["HAND", "WRIST", "KNEE", "FOOT", "SHOULDER", "HIP"]),
                    "view": rng.choice(["PA", "AP", "LAT"]),
                    "laterality": rng.choice(["L", "R"]),
                    "status": rng.choice(["new", "analysed", "in_review", "confirmed"]),
                    "ai_score": rng.random(),
                    "reader": "",
                    "thumbnail_path": "",
                    "calibration": "uncalibrated",
                    "spacing_source": "",
                    "transfer_syntax": "",
                    "photometric": "MONOCHROME2",
                    "bits_stored": 12,
                }
                for i in range(images)
            ],
        )


def timed(db, query: WorklistQuery, repeats: int = 7) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with db.read() as session:
            query_worklist(session, query)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


PROPOSED_INDEXES = (
    "CREATE INDEX ix_images_ai_score ON images (ai_score)",
    "CREATE INDEX ix_images_status_body_part_laterality ON images (status, body_part, laterality)",
)


def bench_worklist(images: int, proposed_indexes: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="skelex-bench-wl-") as tmp:
        ws = open_workspace(Settings(data_dir=Path(tmp), reader="bench"))
        try:
            start = time.perf_counter()
            populate(ws.db, images)
            if proposed_indexes:
                with ws.db.write() as session:
                    for ddl in PROPOSED_INDEXES:
                        session.execute(text(ddl))
                print("  with the proposed indexes:", "; ".join(PROPOSED_INDEXES))
            refresh_statistics(ws.db)  # what import_paths does after adding images
            print(f"worklist: {images} images inserted in {time.perf_counter() - start:.1f} s")
            cases = {
                "first page": WorklistQuery(),
                "filter": WorklistQuery(status="confirmed", body_part="KNEE", laterality="L"),
                "sort": WorklistQuery(sort="ai_score", descending=True),
                "text search": WorklistQuery(text="Name12"),  # typing in the search box
            }
            extra = {
                "search body": WorklistQuery(text="KNEE"),  # many matches
                "search none": WorklistQuery(text="zzz"),
                "date range": WorklistQuery(date_from=date(2020, 1, 1), date_to=date(2020, 3, 1)),
                "sort patient": WorklistQuery(sort="patient_id", descending=False),
                "deep page": WorklistQuery(offset=50_000),
            }
            for name, query in cases.items():
                ms = timed(ws.db, query)
                print(
                    f"  {name:<12} {ms:7.1f} ms  ratio to {TARGETS_MS[name]:.0f} ms target: "
                    f"{ms / TARGETS_MS[name]:.2f}"
                )
            for name, query in extra.items():
                print(f"  {name:<12} {timed(ws.db, query):7.1f} ms  (no target)")
        finally:
            ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument(
        "--proposed-indexes",
        action="store_true",
        help="also create the indexes proposed for the schema",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    bench_import(args.files)
    bench_worklist(args.images, args.proposed_indexes)


if __name__ == "__main__":
    main()
