"""`review confirm` (issue #15, finding 8): the CLI-only dataset path can confirm images, with
the window's rules, so the default `export --status confirmed` has something to export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from tests.core.test_embeddings import import_synthetic


def test_review_confirm_then_export_confirmed(workspace, tmp_path: Path, capsys) -> None:
    db, data_dir = workspace.db, workspace.settings.data_dir
    import_synthetic(db, data_dir, tmp_path / "synth", n=3, seed=8)
    with db.read() as s:
        images = list(s.execute(select(Image.id, Image.file_path).order_by(Image.id)))
    workspace.close()
    base = ["--data-dir", str(data_dir), "--reader", "dr.cli"]
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image_id", "task", "value"])
        for image_id, _path in images[:2]:  # the third image keeps "abnormal" undecided
            writer.writerow([image_id, "abnormal", 1])
    assert main([*base, "label", "import", str(labels)]) == 0
    capsys.readouterr()

    ids = [str(i) for i, _ in images]
    assert main([*base, "review", "confirm", *ids, "--json"]) == 1  # one refused
    result = json.loads(capsys.readouterr().out)
    assert sorted(result["confirmed"]) == ids[:2]
    assert list(result["refused"]) == [ids[2]]
    assert "Abnormal must be decided" in result["refused"][ids[2]]

    out = tmp_path / "export"
    assert main([*base, "export", "--format", "csv", "--out", str(out), "--images", "none"]) == 0
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["image_id"] for r in rows) == ids[:2]  # only the confirmed ones
