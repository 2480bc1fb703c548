"""`skelex-desktop --self-test` from the source tree, its refusals, and what the reader edition
(no torch) says for the training commands and the window's training entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skelex_desktop.cli import main

STEPS = ("data dir", "model", "demo study", "error map", "label and undo", "export csv", "window")


def _self_test(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skelex_desktop", "--self-test", *extra],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _step_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[")]


def test_self_test_runs_every_step_and_opens_the_window(tmp_path: Path) -> None:
    env = {"QT_QPA_PLATFORM": "offscreen", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    done = _self_test(env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _step_lines(done.stdout)
    assert [line.split(": ")[0] for line in lines] == [
        f"[{n}/{len(STEPS)}] {name}" for n, name in enumerate(STEPS, start=1)
    ]
    assert all(": ok (" in line for line in lines), lines
    by_step = dict(zip(STEPS, lines, strict=True))
    assert "skelex-demo" in by_step["model"] and "match their sha256" in by_step["model"]
    assert "4 synthetic DICOM radiographs imported" in by_step["demo study"]
    assert "4 images analysed" in by_step["error map"]
    assert "abnormal=1 written, undone (gone), redone" in by_step["label and undo"]
    assert "labels.csv (1 labelled image" in by_step["export csv"]
    assert "main window shown" in by_step["window"] and "offscreen" in by_step["window"]
    assert done.stdout.splitlines()[-1] == "self-test passed"
    # its temporary data dir is gone, and nothing was written in the user's data dir
    assert not list(tmp_path.glob("skelex-self-test-*"))
    assert not (tmp_path / ".local").exists()


def test_self_test_with_an_empty_environment_skips_only_the_window(tmp_path: Path) -> None:
    """What `env -i skelex-desktop --self-test` sees: no HOME, no display, no PATH."""
    done = _self_test({}, "--data-dir", str(tmp_path / "fresh"))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _step_lines(done.stdout)
    assert len(lines) == len(STEPS) and all(": ok (" in line for line in lines), lines
    assert "window: ok" in lines[-1] and "skipped: no display" in lines[-1]
    # a data dir the user named is kept, with what the test made in it
    assert (tmp_path / "fresh" / "export" / "labels.csv").is_file()


@pytest.fixture
def real_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data dir (platformdirs under a temporary XDG_DATA_HOME) holding a database."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SKELEX_DATA_DIR", raising=False)
    monkeypatch.delenv("SKELEX_DB", raising=False)
    from skelex_desktop.core.settings import default_data_dir

    path = default_data_dir()
    path.mkdir(parents=True)
    (path / "skelex.sqlite3").write_bytes(b"the reader's labels")
    return path


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "[1/" not in captured.out  # no step ran
    return captured.err


def test_self_test_refuses_the_real_data_dir(
    real_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _refused(["--self-test", "--data-dir", str(real_data_dir)], capsys)
    assert f"refuses to run in {real_data_dir}: it is your own data dir" in err
    monkeypatch.setenv("SKELEX_DATA_DIR", str(real_data_dir))
    assert "it is your own data dir" in _refused(["--self-test"], capsys)
    assert (real_data_dir / "skelex.sqlite3").read_bytes() == b"the reader's labels"
    assert sorted(p.name for p in real_data_dir.iterdir()) == ["skelex.sqlite3"]


def test_self_test_refuses_a_database_or_a_folder_in_use(
    real_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{real_data_dir / 'skelex.sqlite3'}"
    err = _refused(["--self-test", "--db", url], capsys)
    assert "refuses to run against a configured database (--db)" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "settings.json").write_text("{}")
    assert "it is not an empty folder" in _refused(
        ["--self-test", "--data-dir", str(other)], capsys
    )
    assert (real_data_dir / "skelex.sqlite3").read_bytes() == b"the reader's labels"


def test_self_test_takes_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--self-test", "worklist"])
    assert exit_info.value.code == 2
    assert "--self-test runs on its own" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["train", "--task", "abnormal"], "Training task heads (`train`)"),
        (["finetune", "--task", "abnormal", "--blocks", "1"], "Fine-tuning (`finetune`)"),
        (["pretrain", "--out", "run"], "Pretraining (`pretrain`)"),
        (["model", "import", "hf", "--name", "mine"], "Importing a checkpoint (`model import`)"),
    ],
)
def test_reader_edition_training_commands_need_the_full_edition(
    argv: list[str],
    what: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # the reader edition's bundle has no torch
    data_dir = tmp_path / "data"
    assert main(["--data-dir", str(data_dir), *argv]) == 1
    err = capsys.readouterr().err
    assert f"{what} needs the full edition of SKELEX Desktop" in err
    assert not data_dir.exists()  # refused before anything was opened or written
