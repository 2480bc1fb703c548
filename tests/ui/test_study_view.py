"""The study view on imported demo studies: the other view of the study beside the image, the
prior by one key, a click opens a companion, linked window/level."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from sqlalchemy import select

from skelex_desktop.core.db.models import Image
from skelex_desktop.core.review.studies import companions
from tests.ui.conftest import active_window

TIMEOUT = 60_000


def test_study_view_prior_and_link(qtbot, demo_workspace, no_modal) -> None:
    win = active_window(qtbot, demo_workspace)
    # the small demo set has one patient with ankles of both sides a few months apart: make the
    # earlier study the same (left) side, so the later one has a prior
    with demo_workspace.db.write() as s:
        for image in s.scalars(select(Image).where(Image.body_part == "ANKLE")):
            image.laterality = "L"
    # an image whose study has another view, and one whose patient has an earlier study
    ids = [win.worklist.model.row_at(r).image_id for r in range(win.worklist.model.total)]
    with demo_workspace.db.read() as s:
        with_view = next(i for i in ids if companions(s, i, with_prior=False))
        with_prior = next(i for i in ids if any(c.prior for c in companions(s, i, True)))
    assert with_view is not None and with_prior is not None

    win.open_image_of_study(with_view)
    other = win.study.companions[0]
    assert not other.prior and len(win.study.companions) == 1
    assert win.study.cells[0].isVisible() and not win.study.cells[1].isVisible()  # 1x2
    qtbot.waitUntil(lambda: win.viewer.frame is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: win.study.views[0].frame is not None, timeout=TIMEOUT)

    # K links window/level: W on the image moves the companion's window too
    qtbot.keyClick(win.viewer, Qt.Key.Key_K)
    qtbot.keyClick(win.viewer, Qt.Key.Key_W)
    assert win.study.views[0].window == win.viewer.window
    qtbot.keyClick(win.viewer, Qt.Key.Key_Plus)  # and zoom: the same scale
    assert win.study.views[0].zoom == win.viewer.zoom and not win.study.views[0].fit_mode
    qtbot.keyClick(win.viewer, Qt.Key.Key_F)
    assert win.study.views[0].fit_mode

    # a click on the companion opens it
    view = win.study.views[0]
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    assert win.current.image_id == other.image.image_id

    # O puts the prior study's matching view first; S alone hides the study's other views
    win.open_image_of_study(with_prior)
    qtbot.keyClick(win.viewer, Qt.Key.Key_O)
    first = win.study.companions[0]
    assert first.prior and first.caption.startswith("PRIOR ")
    qtbot.waitUntil(lambda: win.study.views[0].frame is not None, timeout=TIMEOUT)
    qtbot.keyClick(win.viewer, Qt.Key.Key_S)
    assert all(c.prior for c in win.study.companions)
    qtbot.keyClick(win.viewer, Qt.Key.Key_O)
    assert win.study.companions == [] and not win.study.cells[0].isVisible()
    assert no_modal == []
