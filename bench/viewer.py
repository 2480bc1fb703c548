"""Viewer responsiveness on a 2500 x 2000 16-bit radiograph (offscreen Qt).

Prints, for the same images in the same run:
- cold open: `open_row` until the image is on the canvas (decode in the background loader);
- prefetched open: the same for the next image after the loader prefetched it;
- both as ratios to a baseline measured here: a bare pydicom `dcmread` + `pixel_array`;
- the longest GUI-thread stall while an image is analysed in the background.
Targets: prefetched < 50 ms, stall < 100 ms.

Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python bench/viewer.py`
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROWS, COLS = 2500, 2000
N_IMAGES = 4
PREFETCH_TARGET_MS = 50.0
STALL_TARGET_MS = 100.0


def write_radiographs(folder: Path) -> list[Path]:
    """Large 16-bit CR files made from SynthMSK images resampled to 2500 x 2000."""
    import cv2
    import numpy as np
    import pydicom

    from skelex_desktop.core.synth import SynthConfig, generate_dataset

    src = folder / "src"
    generate_dataset(src, SynthConfig(n=N_IMAGES, seed=7, size=1024, fmt="dicom", workers=1))
    paths = []
    for i, path in enumerate(sorted(src.rglob("*.dcm"))):
        ds = pydicom.dcmread(path)
        big = cv2.resize(ds.pixel_array, (COLS, ROWS), interpolation=cv2.INTER_LINEAR)
        ds.Rows, ds.Columns = ROWS, COLS
        ds.PixelData = np.ascontiguousarray(big.astype(np.uint16)).tobytes()
        target = folder / "big" / f"patient{i}" / "study" / f"img{i}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        paths.append(target)
    return paths


def baseline_ms(paths: list[Path]) -> float:
    import pydicom

    start = time.perf_counter()
    for path in paths:
        pydicom.dcmread(path).pixel_array  # noqa: B018 - the decode is the point
    return (time.perf_counter() - start) * 1000.0 / len(paths)


def wait(app, condition, timeout: float = 120.0) -> float:  # noqa: ANN001
    start = time.perf_counter()
    while not condition():
        app.processEvents()
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the viewer did not finish in time")
        time.sleep(0.001)
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from skelex_desktop.core.ingest import ImportOptions, import_paths
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace
    from skelex_desktop.ui.main_window import MainWindow
    from skelex_desktop.ui.stall import StallDetector

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_radiographs(folder)
        base = baseline_ms(paths)
        ws = open_workspace(Settings(data_dir=folder / "data"))
        import_paths(ws.db, [folder / "big"], ImportOptions(data_dir=folder / "data", workers=1))
        win = MainWindow(ws)
        win.resize(1400, 900)
        win.show()
        win.worklist.model.set_query(sort="image_id", descending=False)
        stalls = StallDetector()

        def shown(row: int):  # noqa: ANN202
            image_id = win.worklist.model.row_at(row).image_id

            def done() -> bool:
                cached = win.loader.frames.get(image_id)
                return cached is not None and win.viewer.frame is cached.frame

            return done

        stalls.start()
        start = time.perf_counter()
        win.open_row(0)
        wait(app, shown(0))
        cold = (time.perf_counter() - start) * 1000.0
        wait(app, lambda: win.analysis is not None)
        stall_first = stalls.stop()
        wait(app, lambda: not win.loader.busy.is_set())  # prefetch of rows 1-2 done
        stalls.start()
        start = time.perf_counter()
        win.open_row(1)
        wait(app, shown(1))
        prefetched = (time.perf_counter() - start) * 1000.0
        wait(app, lambda: win.analysis is not None)
        stall_second = stalls.stop()
        win.close()
        ws.close()

    stall = max(stall_first, stall_second)
    print(f"image {ROWS}x{COLS} 16-bit; baseline dcmread+pixel_array {base:.1f} ms")
    print(f"cold open        {cold:7.1f} ms  = {cold / base:5.2f} x baseline")
    print(
        f"prefetched open  {prefetched:7.1f} ms  = {prefetched / base:5.2f} x baseline, "
        f"{prefetched / PREFETCH_TARGET_MS:4.2f} of the {PREFETCH_TARGET_MS:.0f} ms target"
    )
    print(
        f"longest GUI stall during analysis {stall:6.1f} ms = "
        f"{stall / STALL_TARGET_MS:4.2f} of the {STALL_TARGET_MS:.0f} ms target"
    )


if __name__ == "__main__":
    main()
