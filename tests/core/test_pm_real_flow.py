"""The Parametric Map from the real flow (issue #15, finding 1): import -> `analyze` -> a decision
-> `export --format dicom-pm`. Before, `analyze` stored predictions without an error-map path and
the export wrote no Parametric Map at all."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Prediction
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.flows import decide, imported_and_analysed


def test_analyze_names_the_map_and_export_writes_the_parametric_map(workspace, tmp_path: Path):
    data_dir = workspace.settings.data_dir
    ids = imported_and_analysed(workspace, tmp_path / "synth", n=2, seed=5)
    base = ["--data-dir", str(data_dir)]

    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        paths = [
            p.error_map_path
            for p in s.scalars(select(Prediction).where(Prediction.error_map_path != ""))
        ]
    ws.close()
    assert len(paths) == len(ids)  # one named map per analysed image (the zero-shot prediction)
    for path in paths:
        assert not Path(path).is_absolute() and (data_dir / path).is_file()
    decide(data_dir, "dr.pm", [(image_id, "fracture", 0) for image_id in ids])

    out = tmp_path / "export"
    args = ["export", "--format", "csv,dicom-pm", "--out", str(out), "--status", "any"]
    assert main([*base, *args]) == 0
    maps = sorted((out / "dicom" / "pm").glob("*.dcm"))
    assert len(maps) == len(ids)
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(maps[0]))
    values = pm.pixel_array
    assert values.dtype == np.float32 and np.isfinite(values).all() and values.max() > 0
