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
from skelex_desktop.core.db.models import Image, Prediction
from skelex_desktop.core.review.session import ReviewSession
from tests.core.test_embeddings import import_synthetic


def test_analyze_names_the_map_and_export_writes_the_parametric_map(workspace, tmp_path: Path):
    db, data_dir = workspace.db, workspace.settings.data_dir
    import_synthetic(db, data_dir, tmp_path / "synth", n=2, seed=5)
    workspace.close()
    base = ["--data-dir", str(data_dir)]
    assert main([*base, "analyze", "--all"]) == 0

    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
        paths = [
            p.error_map_path
            for p in s.scalars(select(Prediction).where(Prediction.error_map_path != ""))
        ]
    assert len(paths) == len(ids)  # one named map per analysed image (the zero-shot prediction)
    for path in paths:
        assert not Path(path).is_absolute() and (data_dir / path).is_file()
    session = ReviewSession(ws.db, "dr.pm")
    for image_id in ids:
        session.open(image_id)
        session.select_task("fracture")
        session.choose(0)
    assert session.wait(10)
    session.close()
    ws.close()

    out = tmp_path / "export"
    args = ["export", "--format", "csv,dicom-pm", "--out", str(out), "--status", "any"]
    assert main([*base, *args]) == 0
    maps = sorted((out / "dicom" / "pm").glob("*.dcm"))
    assert len(maps) == len(ids)
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(maps[0]))
    values = pm.pixel_array
    assert values.dtype == np.float32 and np.isfinite(values).all() and values.max() > 0
