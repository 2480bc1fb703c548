"""`import DIR` of a `synth --out DIR` folder takes the radiographs only (issue #15, finding 8):
the ground-truth masks were imported as radiographs of a patient called "masks"."""

from __future__ import annotations

import json
from pathlib import Path

from skelex_desktop.cli import main


def test_import_of_a_synth_folder_skips_the_masks(tmp_path: Path, capsys) -> None:
    out, data = tmp_path / "synth", tmp_path / "data"
    flags = ["--n", "3", "--seed", "2", "--abnormal-fraction", "1", "--format", "dicom"]
    assert main(["synth", "--out", str(out), *flags]) == 0
    assert any((out / "masks").glob("*.png"))  # masks were written (abnormal images)
    capsys.readouterr()
    report = tmp_path / "report.json"
    assert main(["--data-dir", str(data), "import", str(out), "--report", str(report)]) == 0
    capsys.readouterr()
    assert main(["--data-dir", str(data), "worklist", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 3 and all(r["modality"] != "OT" for r in rows)
    assert not any("masks" in (r["patient_id"] + r["patient_name"]).lower() for r in rows)
    text = report.read_text(encoding="utf-8")
    assert "not radiographs" in text and "masks" in text
