"""Steps of the real flow that several end-to-end tests share: synthetic studies imported and
analysed by the command line, decisions made through the review session the window uses."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.review.regions import Box
from skelex_desktop.core.review.session import ReviewSession
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import Workspace, open_workspace
from tests.core.test_embeddings import import_synthetic


def imported_and_analysed(workspace: Workspace, out: Path, n: int, seed: int) -> list[int]:
    """`n` synthetic images imported into `workspace` (closed afterwards), then `analyze --all`
    on the command line; their ids in order."""
    import_synthetic(workspace.db, workspace.settings.data_dir, out, n=n, seed=seed)
    with workspace.db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    workspace.close()
    assert main(["--data-dir", str(workspace.settings.data_dir), "analyze", "--all"]) == 0
    return ids


def decide(data_dir: Path, reader: str, decisions: list[tuple[int, str, int]]) -> None:
    """(image id, task, class index) decisions as a reader makes them in the window: through
    the review session and its writer, each stored before this returns."""
    ws = open_workspace(Settings(data_dir=data_dir))
    session = ReviewSession(ws.db, reader)
    try:
        for image_id, task, index in decisions:
            session.open(image_id)
            session.select_task(task)
            assert session.choose(index)
        assert session.wait(10)
    finally:
        session.close()
        ws.close()


def decide_and_box(
    data_dir: Path,
    reader: str,
    ids: list[int],
    box: tuple[float, float, float, float],
    line: list[tuple[float, float]] | None = None,
) -> None:
    """On every image of `ids`, as a reader does it in the window: a `fracture` decision (class
    k % 2 for the k-th image) and a box (x0, y0, x1, y1); on the first, also the length `line`."""
    ws = open_workspace(Settings(data_dir=data_dir))
    session = ReviewSession(ws.db, reader)
    try:
        for k, image_id in enumerate(ids):
            session.open(image_id)
            session.select_task("fracture")
            assert session.choose(k % 2)
            assert session.add_region(Box(*box))
            if k == 0 and line is not None:
                assert session.measure("length", line)
        assert session.wait(20)
    finally:
        session.close()
        ws.close()
