"""CLI contract: every command has --help; failures are one line on stderr, non-zero."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skelex_desktop.cli import main
from skelex_desktop.core.db.migrate import head_revision

COMMANDS = [
    [],
    ["import"],
    ["worklist"],
    ["synth"],
    ["model"],
    ["model", "list"],
    ["model", "import"],
    ["model", "verify"],
    ["model", "calibrate"],
    ["analyze"],
    ["errormap"],
    ["pretrain"],
    ["train"],
    ["label"],
    ["label", "import"],
    ["label", "list"],
    ["task"],
    ["task", "list"],
    ["task", "add"],
    ["finetune"],
    ["export"],
    ["db"],
    ["db", "upgrade"],
    ["db", "info"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_every_command_has_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: skelex-desktop" in capsys.readouterr().out


def test_console_script_and_module_entry_point_agree(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("skelex-desktop")
    for argv in ([str(script)], [sys.executable, "-m", "skelex_desktop"]):
        out = subprocess.run(
            [*argv, "--data-dir", str(tmp_path), "db", "info", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["revision"] == json.loads(out.stdout)["head"]


def test_db_upgrade_then_info(tmp_path: Path, capsys) -> None:
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    head = head_revision()
    assert f"upgraded database from empty to {head}" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    assert f"up to date at revision {head}" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "db", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"]["tasks"] == 6 and info["data_dir"] == str(tmp_path)


def test_environment_selects_the_database(tmp_path: Path, monkeypatch, capsys) -> None:
    db_file = tmp_path / "elsewhere.sqlite3"
    monkeypatch.setenv("SKELEX_DB", f"sqlite:///{db_file}")
    assert main(["--data-dir", str(tmp_path / "d"), "db", "info"]) == 0
    assert db_file.exists() and str(db_file) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["train", "--task", "fracture"], "has no usable labels"),
        (["train", "--task", "nope"], "unknown task 'nope'"),
        (["analyze", "999"], "no image with id 999"),
        (["model-version", "activate", "head-x", "1"], "no model version head-x 1"),
    ],
)
def test_training_commands_fail_with_one_line(tmp_path: Path, argv, reason, capsys) -> None:
    assert main(["--data-dir", str(tmp_path), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("skelex-desktop: ") and reason in err
    assert len(err.splitlines()) == 1


def test_group_without_action_and_bad_input_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["--data-dir", str(tmp_path), "db"]) == 2
    assert "needs an action" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "label", "import", str(tmp_path / "no.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot read" in err and len(err.splitlines()) == 1


def test_label_import_and_list_json(tmp_path: Path, capsys) -> None:
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace
    from tests.core.factories import add_image

    ws = open_workspace(Settings(data_dir=tmp_path))
    with ws.db.write() as s:
        image_id = add_image(s).id
    ws.close()
    csv_file = tmp_path / "l.csv"
    csv_file.write_text(f"image_id,task,value\n{image_id},tumour_category,benign\n")
    base = ["--data-dir", str(tmp_path), "--reader", "dr.cli"]
    assert main([*base, "label", "import", str(csv_file)]) == 0
    assert "imported 1 labels" in capsys.readouterr().out
    assert main([*base, "label", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["task"], row["value"], row["reader"]) == ("tumour_category", "benign", "dr.cli")


def test_label_import_with_errors_exits_non_zero_and_imports_nothing(tmp_path: Path, capsys):
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("image,task,value\n1.2.3,fracture,1\n")
    assert main(["--data-dir", str(tmp_path), "label", "import", str(csv_file)]) == 1
    err = capsys.readouterr().err
    assert "line 2: no image with SOP Instance UID or file path '1.2.3'" in err
    assert "1 invalid rows; nothing was imported" in err


def test_task_add_and_list(tmp_path: Path, capsys) -> None:
    base = ["--data-dir", str(tmp_path)]
    assert (
        main([*base, "task", "add", "bone_age", "--kind", "regression", "--title", "Bone age"]) == 0
    )
    assert "added task bone_age (regression, order 7)" in capsys.readouterr().out
    assert main([*base, "task", "add", "bone_age", "--kind", "regression"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*base, "task", "add", "side", "--kind", "multiclass", "--classes", "left"]) == 2
    assert "at least two classes" in capsys.readouterr().err
    flags = ["--kind", "binary", "--scope", "study", "--required"]
    assert main([*base, "task", "add", "study_normal", *flags]) == 0
    capsys.readouterr()
    assert main([*base, "task", "list", "--json"]) == 0
    tasks = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in tasks][-2:] == ["bone_age", "study_normal"] and len(tasks) == 8
    assert (tasks[0]["name"], tasks[0]["required"], tasks[0]["scope"]) == (
        "abnormal",
        True,
        "image",
    )
    assert (tasks[-1]["required"], tasks[-1]["scope"]) == (True, "study")
    assert main([*base, "task", "list"]) == 0
    assert "study  required" in capsys.readouterr().out


def test_finetune_without_enough_labels_is_one_line(tmp_path: Path, capsys) -> None:
    assert (
        main(["--data-dir", str(tmp_path), "finetune", "--task", "fracture", "--blocks", "1"]) == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("skelex-desktop: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
