"""Property: truncated or bit-flipped files never make the importer raise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.uid import RLELossless

from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.records import FileTask
from skelex_desktop.core.ingest.worker import WorkerConfig, process_task
from tests.core.test_ingest_helpers import bone_phantom, make_dicom


def _seeds(folder: Path) -> list[bytes]:
    plain = make_dicom(folder / "plain.dcm", pixels=bone_phantom(32, 24))
    rle = make_dicom(folder / "rle.dcm", pixels=bone_phantom(32, 24))
    import pydicom

    ds = pydicom.dcmread(rle)
    ds.compress(RLELossless)
    ds.save_as(rle)
    j2k = Path(get_testdata_file("693_J2KI.dcm")).read_bytes()
    return [plain.read_bytes(), rle.read_bytes(), j2k]


SEEDS: list[bytes] = []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=8),
    suffix=st.sampled_from([".dcm", "", ".png"]),
)
def test_damaged_files_never_raise(
    tmp_path_factory, seed: int, cut: float, flips: list[tuple[float, int]], suffix: str
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    if not SEEDS:
        SEEDS.extend(_seeds(tmp_path_factory.mktemp("seeds")))
    data = bytearray(SEEDS[seed])
    data = data[: max(1, int(len(data) * (0.2 + 0.8 * cut)))] if cut < 0.9 else data
    for where, xor in flips:
        data[int(where * (len(data) - 1))] ^= xor
    path = folder / f"damaged{suffix}"
    path.write_bytes(bytes(data))
    config = WorkerConfig(thumbnails_dir=str(folder / "thumbs"))
    result = process_task(FileTask(str(path), str(folder)), config)
    assert result.outcome in set(ImportOutcome)
    if result.outcome in (ImportOutcome.FAILED, ImportOutcome.SKIPPED):
        assert result.reason
    for image in result.images:
        assert image.rows > 0 and image.cols > 0
        assert np.isfinite(image.window_width) and image.window_width > 0


def test_damaged_folder_imports_through_the_database(db, data_dir: Path, tmp_path: Path) -> None:
    from tests.core.test_ingest_helpers import run_import

    seeds = _seeds(tmp_path / "seeds")
    rng = np.random.default_rng(7)
    for i in range(15):
        data = bytearray(seeds[i % len(seeds)])
        data = data[: int(len(data) * rng.uniform(0.3, 1.0))]
        for _ in range(int(rng.integers(0, 6))):
            data[int(rng.integers(0, len(data)))] ^= int(rng.integers(1, 256))
        (tmp_path / "damaged" / f"{i}.dcm").parent.mkdir(exist_ok=True)
        (tmp_path / "damaged" / f"{i}.dcm").write_bytes(bytes(data))
    report = run_import(db, data_dir, [tmp_path / "damaged"])
    assert len(report.files) == 15
    assert all(r.reason for r in report.files if r.outcome == ImportOutcome.FAILED)


def _panicking_rle(folder: Path) -> Path | None:
    """A damaged RLE file on which a native (Rust) decoder panics, found by seeded mutation."""
    import random

    import pydicom
    from pydicom.pixels import pixel_array

    rle = make_dicom(folder / "rle.dcm", pixels=bone_phantom(32, 24))
    ds = pydicom.dcmread(rle)
    ds.compress(RLELossless)
    ds.save_as(rle)
    base = rle.read_bytes()
    rng = random.Random(0)
    damaged = folder / "panic.dcm"
    for _ in range(2000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[int(rng.random() * (len(data) - 1))] ^= rng.randint(1, 255)
        damaged.write_bytes(bytes(data))
        try:
            pixel_array(pydicom.dcmread(damaged), decoding_plugin="pylibjpeg")
        except Exception:  # an ordinary decoder error: keep looking for a panic
            continue
        except BaseException:  # noqa: BLE001 - pyo3's PanicException is not an Exception
            return damaged
    return None


def test_a_decoder_panic_is_a_failed_file_not_a_crash(tmp_path: Path) -> None:
    damaged = _panicking_rle(tmp_path)
    assert damaged is not None, "no panicking input found; the decoder may have been fixed"
    config = WorkerConfig(thumbnails_dir=str(tmp_path / "thumbs"))
    result = process_task(FileTask(str(damaged), str(tmp_path)), config)
    assert result.outcome in (ImportOutcome.FAILED, ImportOutcome.IMPORTED)
    if result.outcome == ImportOutcome.FAILED:
        assert result.reason
