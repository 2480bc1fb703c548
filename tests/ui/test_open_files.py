"""Files handed to the application (a file manager's Open With, `skelex-desktop open PATH...`)
are imported and the first of their images is shown."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from skelex_desktop.cli import build_parser, cmd_gui
from skelex_desktop.core.db.models import Image
from tests.ui.conftest import active_window

ROOT = Path(__file__).resolve().parents[2]


def _a_radiograph(demo_source: Path) -> Path:
    return next(p for p in sorted(demo_source.rglob("*.dcm")) if "masks" not in p.parts)


def test_an_opened_file_is_imported_and_shown(qtbot, demo_source, workspace, no_modal) -> None:
    source = _a_radiograph(demo_source)
    win = active_window(qtbot, workspace)
    dialog = win.open_files([source])
    qtbot.waitUntil(lambda: win.current is not None, timeout=120_000)
    with workspace.db.read() as s:
        (image,) = s.query(Image).all()
    assert win.current.image_id == image.id
    assert Path(image.file_path) == source
    qtbot.waitUntil(lambda: not dialog.isVisible())  # all imported: nothing to read there
    assert no_modal == []


def test_an_already_imported_file_opens_its_image_and_a_bad_one_keeps_the_reason(
    qtbot, demo_source, workspace, tmp_path, no_modal
) -> None:
    source = _a_radiograph(demo_source)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM" + b"\0" * 40)
    win = active_window(qtbot, workspace)
    first = win.open_files([source])
    qtbot.waitUntil(lambda: win.current is not None, timeout=120_000)
    first_id = win.current.image_id
    qtbot.waitUntil(lambda: not first.isVisible())
    win.session.open(first_id)  # the same file again, next to a broken one
    dialog = win.open_files([broken, source])
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=120_000)
    qtbot.waitUntil(lambda: win.current is not None and win.current.image_id == first_id)
    assert dialog.isVisible()  # the broken file's reason stays readable
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 2).text() for r in range(2)}
    assert rows[str(broken)]  # a reason is shown
    with workspace.db.read() as s:
        assert s.query(Image).count() == 1


def test_the_menu_entry_hands_its_files_to_the_open_command(tmp_path: Path) -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment]
    entry.read(ROOT / "installer" / "skelex-desktop.desktop")
    exec_line = shlex.split(entry["Desktop Entry"]["Exec"])
    assert exec_line[0] == "skelex-desktop" and exec_line[-1] == "%F"
    assert "application/dicom" in entry["Desktop Entry"]["MimeType"]
    files = [str(tmp_path / "a.dcm"), str(tmp_path / "b dir")]
    args = build_parser().parse_args(exec_line[1:-1] + files)
    assert args.handler is cmd_gui and args.paths == files
    menu = build_parser().parse_args(exec_line[1:-1])  # from the menu: no files
    assert menu.handler is cmd_gui and menu.paths == []
