"""Issue #15, finding 8: `label import` of files whose image paths are relative.

SynthMSK's own `ground_truth.csv` names its images relative to its folder and holds one column
per task; `synth --out D` -> `import D` -> `label import D/ground_truth.csv` must store its
labels unchanged, from whatever working directory, whether the images were imported in place
or copied into the store. A relative path is also matched as the tail of an imported path
when that is unique, and refused by name when it is not.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from skelex_desktop.cli import main
from skelex_desktop.core.review.schema import load_schema_file

TASKS = [spec.name for spec in load_schema_file()]
Capsys = pytest.CaptureFixture[str]


def synth(folder: Path, seed: int, n: int = 6) -> list[dict[str, str]]:
    """`synth --out folder` (PNG, small); its ground-truth rows."""
    command = ["synth", "--out", str(folder), "--n", str(n), "--seed", str(seed)]
    assert main([*command, "--format", "png", "--size", "128", "--json"]) == 0
    with open(folder / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def cli(data: Path, *args: str) -> int:
    return main(["--data-dir", str(data), "--reader", "dr.truth", *args])


def listed(data: Path, capsys: Capsys, root: Path) -> dict[tuple[str, str], str]:
    """(image file relative to `root`, task) -> value of every current label (`label list`);
    image ids are matched to the files under `root` by content (in place or in the store)."""
    by_hash = {
        hashlib.sha256(f.read_bytes()).hexdigest(): f.relative_to(root).as_posix()
        for f in root.rglob("IMG*.png")
    }
    with sqlite3.connect(data / "skelex.sqlite3") as connection:
        hashes = dict(connection.execute("SELECT id, content_hash FROM images"))
    capsys.readouterr()
    assert cli(data, "label", "list", "--json") == 0
    labels = json.loads(capsys.readouterr().out)
    assert {(label["reader"], label["source"]) for label in labels} <= {("dr.truth", "human")}
    return {
        (by_hash[hashes[label["image_id"]]], label["task"]): str(label["value"]) for label in labels
    }


def truth(rows: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    """(file, task) -> value of every filled task column of the ground truth."""
    return {(row["file"], task): row[task] for row in rows for task in TASKS if row[task]}


@pytest.mark.parametrize("copy", [False, True], ids=["in-place", "copied-into-the-store"])
def test_synth_ground_truth_imports_unchanged(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, copy: bool
) -> None:
    data, out = tmp_path / "data", tmp_path / "synth"
    rows = synth(out, seed=5)
    assert cli(data, "import", str(out), *(["--copy"] if copy else [])) == 0
    monkeypatch.chdir(data)  # the paths are relative to the file, not to the working folder
    capsys.readouterr()
    assert cli(data, "label", "import", str(out / "ground_truth.csv"), "--json") == 0
    expected = truth(rows)
    assert {task for _file, task in expected} >= {"abnormal", "fracture", "tumour_category"}
    assert json.loads(capsys.readouterr().out)["imported"] == len(expected)
    assert listed(data, capsys, out) == expected


def test_a_relative_path_elsewhere_matches_a_unique_tail_and_refuses_an_ambiguous_one(
    tmp_path: Path, capsys: Capsys
) -> None:
    data, sets = tmp_path / "data", tmp_path / "sets"
    first = synth(sets / "a", seed=1, n=2)
    synth(sets / "b", seed=2, n=2)
    assert cli(data, "import", str(sets)) == 0
    labels = tmp_path / "elsewhere" / "labels.csv"
    labels.parent.mkdir()
    unique = f"a/{first[0]['file']}"  # relative to the folder that was imported
    labels.write_text(f"image,task,value\n{unique},fracture,1\n", encoding="utf-8")
    capsys.readouterr()
    assert cli(data, "label", "import", str(labels)) == 0
    assert listed(data, capsys, sets) == {(unique, "fracture"): "1"}

    name = Path(unique).name  # IMG00000.png: in set a and in set b
    labels.write_text(f"image,task,value\n{unique},implant,1\n{name},implant,1\n", "utf-8")
    assert cli(data, "label", "import", str(labels)) == 1
    err = capsys.readouterr().err
    assert f"line 3: '{name}' is ambiguous: 2 imported images end with it" in err
    assert "1 invalid rows; nothing was imported" in err
    assert listed(data, capsys, sets) == {(unique, "fracture"): "1"}


def test_a_file_beside_the_labels_that_was_not_imported_is_named(
    tmp_path: Path, capsys: Capsys
) -> None:
    data, out = tmp_path / "data", tmp_path / "synth"
    rows = synth(out, seed=3, n=2)
    assert cli(data, "import", str(out / rows[0]["file"])) == 0
    capsys.readouterr()
    assert cli(data, "label", "import", str(out / "ground_truth.csv")) == 1
    err = capsys.readouterr().err
    missing = out.resolve() / rows[1]["file"]
    assert (
        f"line 3: no image with SOP Instance UID or file path '{rows[1]['file']}' "
        f"(the file '{missing}' exists but was not imported)"
    ) in err
    assert listed(data, capsys, out) == {}


def test_ground_truth_with_a_bad_value_names_the_column_and_stores_nothing(
    tmp_path: Path, capsys: Capsys
) -> None:
    data, out = tmp_path / "data", tmp_path / "synth"
    rows = synth(out, seed=4, n=3)
    assert cli(data, "import", str(out)) == 0
    rows[1]["kl_grade"] = "7"
    with open(out / "edited.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert cli(data, "label", "import", str(out / "edited.csv")) == 1
    err = capsys.readouterr().err
    assert "line 3: column kl_grade: task 'kl_grade': '7' is not one of" in err
    assert listed(data, capsys, out) == {}


def test_a_task_column_without_values_is_refused_at_the_header(tmp_path: Path, capsys: Capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("image,task\n1.2.3,fracture\n", encoding="utf-8")
    assert cli(tmp_path / "data", "label", "import", str(labels)) == 1
    assert "needs columns task, value and one of" in capsys.readouterr().err
