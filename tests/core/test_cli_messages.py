"""Issue #16, finding 5: every error names the file, the line or the key, and the way out.

Through the command line (`cli.main`, or a real process for the closed pipe): label CSVs that
are not UTF-8 text or not valid CSV, reader names with control characters or too long (from
`--reader`, settings.json and CSV rows alike), broken settings files, and `worklist | head`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skelex_desktop.cli import STDOUT_CLOSED, main
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.factories import add_image

SOP = "1.2.826.0.1.1"
HEADER = "image,task,value,reader\n"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A workspace with one image (SOP Instance UID `SOP`)."""
    folder = tmp_path / "data"
    ws = open_workspace(Settings(data_dir=folder, reader="dr.test"))
    with ws.db.write() as session:
        add_image(session, sop=SOP)
    ws.close()
    return folder


def import_csv(data_dir: Path, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), "label", "import", str(path)])
    return code, capsys.readouterr().err


def stored_labels(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["--data-dir", str(data_dir), "label", "list", "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if out.startswith("[") else []


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        pytest.param(
            (HEADER + f"{SOP},fracture,1,dr.a\n{SOP},implant,0,Dr. Müller\n").encode("latin-1"),
            3,
            "not UTF-8 text (byte 0xfc",
            id="latin-1",
        ),
        pytest.param(
            (HEADER + f"{SOP},fracture,1,dr.a\n").encode("utf-16"),
            1,
            "the file is UTF-16 text",
            id="utf-16",
        ),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
            3,
            "holds NUL bytes (offset 8 of the file): this is a binary file",
            id="binary",
        ),
    ],
)
def test_a_csv_that_is_not_utf8_text_is_named_with_its_line_and_the_fix(
    data_dir: Path, tmp_path: Path, capsys, content: bytes, line: int, reason: str
) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    code, err = import_csv(data_dir, path, capsys)
    assert code == 1
    assert f"{path}: line {line}: {reason}" in err
    assert "save the file as UTF-8" in err and "codec" not in err
    assert stored_labels(data_dir, capsys) == []


def test_a_field_over_the_csv_limit_names_its_line(data_dir: Path, tmp_path: Path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text(HEADER + f"{SOP},fracture,1,dr.a\n{SOP},fracture,{'1' * 200_000},dr.a\n")
    code, err = import_csv(data_dir, path, capsys)
    assert code == 1
    assert f"{path}: line 3: a field runs on for more than 131072 characters" in err
    assert "field larger than field limit" not in err
    assert stored_labels(data_dir, capsys) == []


def test_an_unbalanced_quote_is_named_at_the_line_that_opened_it(
    data_dir: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(HEADER + f'{SOP},fracture,"1,dr.a\n{SOP},implant,0,dr.a\n')
    code, err = import_csv(data_dir, path, capsys)
    assert code == 1
    assert f"{path}: line 2: the quote opened on this line is never closed" in err
    assert "binary" not in err
    assert stored_labels(data_dir, capsys) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("dr.\x00nul", "control character U+0000 at position 4"),
        ("dr.\x07bell", "control character U+0007 at position 4"),
        ("dr.\u202enosrep", "control character U+202E RIGHT-TO-LEFT OVERRIDE at position 4"),
        ("d" * 5000, "is 5000 characters long; at most 128 are allowed"),
    ],
    ids=["nul", "bell", "rtl-override", "5000-characters"],
)
def test_reader_names_are_checked_in_csv_rows_option_and_settings(
    data_dir: Path, tmp_path: Path, capsys, name: str, reason: str
) -> None:
    path = tmp_path / "labels.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(f"{HEADER}{SOP},fracture,1,dr.ok\n{SOP},implant,1,{name}\n")
    code, err = import_csv(data_dir, path, capsys)
    assert code == 1
    assert f"{path}: line 3: reader name" in err and reason in err
    assert "correct the reader column" in err and "nothing was imported" in err
    assert "\x00" not in err and "\u202e" not in err  # the name is shown escaped
    assert stored_labels(data_dir, capsys) == []

    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(data_dir), "--reader", name, "worklist"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "argument --reader: reader name" in err and reason in err
    assert "choose another --reader" in err

    settings_file = data_dir / "settings.json"
    settings_file.write_text(json.dumps({"version": 1, "reader": name}), encoding="utf-8")
    assert main(["--data-dir", str(data_dir), "worklist"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"skelex-desktop: error: {settings_file}: key 'reader': reader name")
    assert reason in err and "remove the key to use the default" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "pieces"),
    [
        pytest.param(
            b'{"version": "abc"}',
            ["key 'version' must be a whole number from 1 to", 'got "abc"', "delete the file"],
            id="version-abc",
        ),
        pytest.param(
            b'{"version": 0}',
            ["key 'version' must be a whole number from 1 to", "got 0", "delete the file"],
            id="version-0",
        ),
        pytest.param(
            '{"version": 1, "reader": "Müller"}'.encode("latin-1"),
            ["not UTF-8 text (byte 0xfc at offset 27)", "save it as UTF-8"],
            id="latin-1",
        ),
        pytest.param(
            b'{"version": 1, "inference_threads": "many"}',
            ["key 'inference_threads': must be a whole number of at least 1", 'got "many"'],
            id="threads-many",
        ),
        pytest.param(
            b'{"version": 1, "inference_threads": -3}',
            ["key 'inference_threads': must be a whole number of at least 1", "got -3"],
            id="threads-negative",
        ),
        pytest.param(
            b'{"version": 1, "reader": null}',
            ["key 'reader': reader name must be text, got null"],
            id="reader-null",
        ),
        pytest.param(
            b'{"version": 1,\n "reader": "x",,}',
            ["not valid JSON at line 2, column 16"],
            id="not-json",
        ),
    ],
)
def test_a_broken_settings_file_names_itself_the_key_and_the_way_out(
    tmp_path: Path, capsys, content: bytes, pieces: list[str]
) -> None:
    settings_file = tmp_path / "settings.json"
    settings_file.write_bytes(content)
    assert main(["--data-dir", str(tmp_path), "worklist"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(settings_file) in err and ("delete the file" in err or "remove the key" in err)
    for piece in pieces:
        assert piece in err
    assert "invalid literal" not in err and "codec" not in err


def test_a_closed_output_pipe_ends_quietly(tmp_path: Path) -> None:
    """`worklist | head`: the reader of our output is gone before we write."""
    process = subprocess.Popen(
        [sys.executable, "-m", "skelex_desktop", "--data-dir", str(tmp_path), "worklist"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # nobody reads stdout any more: the first write meets EPIPE
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == STDOUT_CLOSED
    assert err == ""
