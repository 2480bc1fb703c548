"""The export dialog on a real labelled workspace (pytest-qt, offscreen)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.dialogs import export_dialog
from skelex_desktop.ui.dialogs.export_dialog import ExportDialog
from skelex_desktop.ui.workers import JobRunner
from tests.core.export_fixtures import build_labelled_set, leftovers


@pytest.fixture
def dialog(qtbot, workspace: Workspace, tmp_path: Path) -> ExportDialog:
    build_labelled_set(workspace.db, workspace.settings.data_dir, tmp_path, n=6)
    runner = JobRunner()
    dlg = ExportDialog(workspace, runner)
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    runner.cancel_all()


def test_dialog_exports_with_progress(qtbot, dialog: ExportDialog, tmp_path: Path):
    out = tmp_path / "from-dialog"
    dialog.out_edit.setText(str(out))
    dialog.format_checks["coco"].setChecked(True)
    dialog.images_combo.setCurrentText("png8")
    seen: list[tuple[int, int]] = []
    with qtbot.waitSignal(dialog.exported, timeout=60_000) as blocker:
        job = dialog.start()
        assert job is not None
        job.progressed.connect(lambda done, total, _t: seen.append((done, total)))
        assert not dialog.export_button.isEnabled()
    result = blocker.args[0]
    assert result.images == 6 and (out / "labels.csv").is_file()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["deidentification"] is not None  # de-identify is on by default
    assert "exported 6 images" in dialog.message.text()
    assert seen and dialog.progress.value() == dialog.progress.maximum()
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled())


def test_dialog_explains_missing_choices(dialog: ExportDialog):
    assert dialog.start() is None
    assert "target folder" in dialog.message.text()
    dialog.out_edit.setText("/tmp/somewhere-new")
    dialog.format_checks["csv"].setChecked(False)
    assert dialog.start() is None
    assert "at least one export format" in dialog.message.text()


def test_cancel_stops_the_job_and_leaves_nothing(
    qtbot, dialog: ExportDialog, tmp_path: Path, monkeypatch
):
    real = export_dialog.export_labelled_set

    def slow(db, options, progress, data_dir):  # noqa: ANN001, ANN202 - same signature
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not progress.cancelled():
            time.sleep(0.01)
        return real(db, options, progress, data_dir)

    monkeypatch.setattr(export_dialog, "export_labelled_set", slow)
    out = tmp_path / "cancelled"
    dialog.out_edit.setText(str(out))
    job = dialog.start()
    assert job is not None and dialog.cancel_button.text() == "Cancel"
    with qtbot.waitSignal(job.cancelled, timeout=30_000):
        dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.job is None)
    assert "cancelled" in dialog.message.text()
    assert not out.exists() and leftovers(tmp_path) == []
