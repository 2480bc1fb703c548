"""One analysis pipeline: an image analysed by `skelex-desktop analyze` and the same image
opened in the window end with the same prediction rows, region-guided ones included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image, ModelVersion, Prediction, Task
from skelex_desktop.core.heads.region_guided import REGION_METHOD
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import Workspace, open_workspace
from skelex_desktop.ui.main_window import MainWindow
from tests.core.test_embeddings import import_synthetic, labelled_head_on


def prediction_rows(ws: Workspace, image_id: int) -> list[tuple[Any, ...]]:
    """Every prediction of one image, without row ids and with the data dir written out."""
    data_dir = str(ws.settings.data_dir)
    with ws.db.read() as s:
        rows = s.execute(
            select(ModelVersion.name, ModelVersion.version, Task.name, Prediction)
            .join(ModelVersion, Prediction.model_version_id == ModelVersion.id)
            .join(Task, Prediction.task_id == Task.id)
            .where(Prediction.image_id == image_id)
        ).all()
        out = []
        for name, version, task, p in rows:
            details = json.dumps(p.details or {}, sort_keys=True).replace(data_dir, "<data>")
            probabilities = {k: round(float(v), 6) for k, v in (p.probabilities or {}).items()}
            out.append(
                (
                    name,
                    version,
                    task,
                    json.dumps(probabilities, sort_keys=True),
                    round(float(p.score), 6) if p.score is not None else None,
                    details,
                    (p.error_map_path or "").replace(data_dir, "<data>"),
                )
            )
    return sorted(out, key=repr)


def test_cli_and_window_store_the_same_predictions(tmp_path: Path, qtbot) -> None:
    first, second = tmp_path / "cli", tmp_path / "window"
    ws = open_workspace(Settings(data_dir=first, inference_threads=2))
    labelled_head_on(ws.db, ws.settings, ErrorMapService(ws.settings), tmp_path / "src")
    import_synthetic(ws.db, first, tmp_path / "late", n=1, seed=77)
    with ws.db.read() as s:
        image_id = max(s.scalars(select(Image.id)))
    ws.close()
    shutil.copytree(first, second)

    assert main(["--data-dir", str(first), "analyze", str(image_id), "--json"]) == 0
    cli = open_workspace(Settings(data_dir=first))
    by_cli = prediction_rows(cli, image_id)
    cli.close()

    window_ws = open_workspace(Settings(data_dir=second, inference_threads=2))
    window = MainWindow(window_ws)
    qtbot.addWidget(window)
    window.open_image(image_id)
    qtbot.waitUntil(lambda: window.analysis is not None, timeout=120_000)
    by_window = prediction_rows(window_ws, image_id)
    window.close()
    window_ws.close()

    methods = {json.loads(row[5]).get("method") for row in by_cli}
    assert {"zero-shot error map", "task head", REGION_METHOD} <= methods
    assert by_window == by_cli
