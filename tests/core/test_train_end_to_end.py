"""Synthetic radiographs -> import -> labels -> analyze -> train (child process) -> model
version and head predictions shown by `task_states`, all through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.review.labels import confirm_label
from tests.core.test_embeddings import import_synthetic


def test_synthetic_labels_to_a_head_suggestion(workspace, tmp_path: Path, capsys) -> None:
    db, data_dir = workspace.db, workspace.settings.data_dir
    truth = import_synthetic(db, data_dir, tmp_path / "synth", n=16, seed=4)
    with db.read() as s:
        images = {sop: i for i, sop in s.execute(select(Image.id, Image.sop_instance_uid))}
    for sop, image_id in images.items():
        confirm_label(db, image_id, "abnormal", truth[sop]["abnormal"], "dr.test")
    workspace.close()
    base = ["--data-dir", str(data_dir)]
    assert main([*base, "analyze", "--all"]) == 0
    capsys.readouterr()
    assert main([*base, "train", "--task", "abnormal", "--folds", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["name"], result["version"]) == ("head-abnormal", "1")
    assert result["predictions"] == len(images) and result["metrics"]["images"] == len(images)
    metrics = result["metrics"]["cv"]["abnormal"]
    assert {"auroc", "balanced_accuracy", "f1_macro", "ece", "ece_calibrated"} <= set(metrics)
    with db.read() as s:
        state = next(
            st for st in task_states(s, next(iter(images.values()))) if st.name == "abnormal"
        )
    # the refresh after training ran the pipeline: the new head's region-guided suggestion
    assert result["refresh"]["region_predictions"] == len(images)
    assert state.method == "task head (region-guided)" and state.probability is not None
    assert main([*base, "model-version", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["name"], r["active"]) for r in rows} == {
        ("skelex-demo", True),
        ("skelex-demo-heads", True),
        ("head-abnormal", True),
    }
    assert main([*base, "model-version", "list"]) == 0
    assert "head-abnormal" in capsys.readouterr().out
