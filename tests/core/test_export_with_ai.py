"""AI suggestions in the export when asked (issue #15, finding 8): import -> analyze -> a
decision -> `export --with-ai`; the AI's columns stand beside the labels, never in them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from skelex_desktop.cli import main
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.flows import decide, imported_and_analysed


def test_export_with_ai_keeps_suggestions_apart(workspace, tmp_path: Path) -> None:
    data_dir = workspace.settings.data_dir
    ids = imported_and_analysed(workspace, tmp_path / "synth", n=2, seed=6)
    base = ["--data-dir", str(data_dir)]
    ws = open_workspace(Settings(data_dir=data_dir))
    with ws.db.read() as s:
        shown = {st.name: st for st in task_states(s, ids[0])}
    ws.close()
    # the reader's call, whatever the AI said
    decide(data_dir, "dr.ai", [(image_id, "fracture", 1) for image_id in ids])

    out = tmp_path / "export"
    args = ["export", "--format", "csv,jsonl", "--out", str(out), "--status", "any", "--with-ai"]
    assert main([*base, *args, "--images", "none"]) == 0
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = {int(r["image_id"]): r for r in csv.DictReader(fh)}
    first = rows[ids[0]]
    assert first["fracture"] == "1"  # the label column holds the reader's decision only
    suggestion = shown["fracture"]
    assert first["ai_fracture"] == str(int(suggestion.suggestion))
    assert float(first["ai_fracture_p"]) == suggestion.probability
    assert first["ai_fracture_model"].startswith("skelex-demo")
    assert first["ai_abnormal"] in ("0", "1") and first["ai_abnormal_model"]
    assert first["ai_anatomical_location"] == "" and first["ai_anatomical_location_model"] == ""
    record = json.loads((out / "labels.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert {"ai_fracture", "ai_fracture_p", "ai_fracture_model"} <= set(record)

    plain = tmp_path / "plain"
    assert main([*base, "export", "--format", "csv", "--out", str(plain), "--status", "any"]) == 0
    with open(plain / "labels.csv", newline="", encoding="utf-8") as fh:
        assert not any(c.startswith("ai_") for c in next(csv.reader(fh)))  # only when asked
