"""`skelex-desktop --self-test`: the installed application's whole path on a throw-away data dir.

Each step prints one line: open a new workspace (migrations), verify the bundled model, make and
import a demo study, analyse it (error maps with the bundled model), write a label, undo and redo
it, export a CSV, and, when a window can be opened, open and close the main window. It never runs
against the user's own database: `--db`/SKELEX_DB, the user's data dir and any data dir that is
not empty are refused (exit 2). A failed step prints its reason and stops (exit 1); the data dir
is then kept for inspection.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from skelex_desktop.commands.common import CliError

REFUSED = 2
FAILED = 1
DEMO_STUDY_IMAGES = 4  # two patients, so the import uses its worker processes
DEMO_STUDY_SEED = 7
DEMO_STUDY_SIZE = 512
LABEL_TASK = "abnormal"
LABEL_INDEX = 1  # "abnormal"

WindowStep = Callable[[Any], str]  # a Workspace -> what the window showed


class StepFailed(Exception):
    """A self-test step whose result is not what it must be; the message says what was seen."""


def refuse_real_database(
    data_dir: str | None, db_url: str | None, environ: Mapping[str, str]
) -> Path | None:
    """The data dir the self-test may use (None: a new temporary one); CliError (exit 2) for
    a configured database, the user's data dir or any data dir that already holds something."""
    from skelex_desktop.core.settings import default_data_dir

    if db_url or environ.get("SKELEX_DB"):
        source = "--db" if db_url else "SKELEX_DB"
        raise CliError(
            f"the self-test refuses to run against a configured database ({source}); it makes its "
            "own temporary one: run it without --db and with SKELEX_DB unset",
            code=REFUSED,
        )
    chosen = data_dir or environ.get("SKELEX_DATA_DIR")
    if not chosen:
        return None
    path = Path(chosen).expanduser().absolute()
    if path.resolve() == default_data_dir().expanduser().resolve():
        raise CliError(
            f"the self-test refuses to run in {path}: it is your own data dir (your database and "
            "labels); run it without --data-dir, or give a new, empty folder",
            code=REFUSED,
        )
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CliError(
            f"the self-test refuses to run in {path}: it is not an empty folder (it may hold a "
            "SKELEX database); give a new, empty folder, or none for a temporary one",
            code=REFUSED,
        )
    return path


def run_self_test(args: argparse.Namespace, window_step: WindowStep | None) -> int:
    """Run every step, printing one line each; 0 when all passed. `window_step` is None when no
    window can be opened here (no display): that step is reported as skipped."""
    chosen = refuse_real_database(args.data_dir, args.db, os.environ)
    data_dir = chosen or Path(tempfile.mkdtemp(prefix="skelex-self-test-"))
    print(f"skelex-desktop self-test: {edition_text()}, data dir {data_dir}", flush=True)
    passed = _Steps(data_dir, window_step).run()
    if not passed:
        print(f"self-test FAILED; its data dir is kept: {data_dir}", flush=True)
        return FAILED
    if chosen is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    print("self-test passed", flush=True)
    return 0


def edition_text() -> str:
    from skelex_desktop import __version__
    from skelex_desktop.core.training.edition import is_full_edition

    edition = "full edition" if is_full_edition() else "reader edition (no training)"
    frozen = "installed bundle" if getattr(sys, "frozen", False) else "source checkout"
    return f"version {__version__}, {edition}, {frozen}"


class _Steps:
    """The steps in order; each returns its detail text or raises."""

    def __init__(self, data_dir: Path, window_step: WindowStep | None) -> None:
        self.data_dir = data_dir
        self.window_step = window_step
        self.workspace: Any = None
        self.image_ids: list[int] = []

    def run(self) -> bool:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("data dir", self.open_data_dir),
            ("model", self.verify_model),
            ("demo study", self.import_demo_study),
            ("error map", self.analyse),
            ("label and undo", self.label_and_undo),
            ("export csv", self.export_csv),
            ("window", self.window),
        ]
        try:
            for n, (name, step) in enumerate(steps, start=1):
                started = time.perf_counter()
                try:
                    detail = step()
                except Exception as exc:  # reported as the step's one line
                    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                    reason = f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"
                    print(f"[{n}/{len(steps)}] {name}: FAILED: {reason}", flush=True)
                    return False
                took = time.perf_counter() - started
                print(f"[{n}/{len(steps)}] {name}: ok ({took:.1f} s) {detail}", flush=True)
            return True
        finally:
            if self.workspace is not None:
                self.workspace.close()

    def open_data_dir(self) -> str:
        from skelex_desktop.core.settings import Settings
        from skelex_desktop.core.workspace import open_workspace

        settings = Settings(data_dir=self.data_dir, reader="self-test")
        self.workspace = open_workspace(settings)
        database = self.data_dir / "skelex.sqlite3"
        if not database.is_file():
            raise StepFailed(f"no database was created at {database}")
        return f"new database {database.name} migrated to revision {self.workspace.upgrade.after}"

    def verify_model(self) -> str:
        from skelex_desktop.core.inference.registry import Registry

        info = Registry.from_settings(self.workspace.settings).verify(
            self.workspace.settings.active_model
        )
        return (
            f"{info.name} {info.version}: {info.file_count} files match their sha256 "
            f"({info.origin}, {info.path})"
        )

    def import_demo_study(self) -> str:
        from skelex_desktop.core.ingest import ImportOptions, import_paths
        from skelex_desktop.core.synth import SynthConfig, generate_dataset

        out = self.data_dir / "demo-study"
        config = SynthConfig(
            n=DEMO_STUDY_IMAGES,
            seed=DEMO_STUDY_SEED,
            fmt="dicom",
            size=DEMO_STUDY_SIZE,
            workers=1,
            studies_per_patient=(1, 1),
        )
        generate_dataset(out, config)
        options = ImportOptions(data_dir=self.data_dir, reader="self-test", workers=2)
        report = import_paths(self.workspace.db, [out], options)
        self.image_ids = sorted(i for f in report.files for i in f.image_ids)
        if report.failed or len(self.image_ids) != DEMO_STUDY_IMAGES:
            reasons = "; ".join(f.reason for f in report.files if f.reason)
            raise StepFailed(
                f"{len(self.image_ids)} of {DEMO_STUDY_IMAGES} DICOM images imported: {reasons}"
            )
        return f"{len(self.image_ids)} synthetic DICOM radiographs imported (2 decoding processes)"

    def analyse(self) -> str:
        from skelex_desktop.core.analysis.pipeline import analyse_images
        from skelex_desktop.core.inference.service import ErrorMapService

        service = ErrorMapService(self.workspace.settings)
        summary = analyse_images(self.workspace.db, service, self.image_ids)
        if summary.failed or summary.analysed != len(self.image_ids):
            failed = "; ".join(f"image {k}: {v}" for k, v in summary.failed.items())
            raise StepFailed(f"{summary.analysed} of {len(self.image_ids)} analysed; {failed}")
        maps = list((self.data_dir / "cache").rglob("*.np[yz]"))
        if not maps:
            raise StepFailed(f"no error map was cached under {self.data_dir / 'cache'}")
        return (
            f"{summary.analysed} images analysed with {service.model}, {len(maps)} cached "
            f"arrays, {summary.head_predictions} head predictions"
        )

    def label_and_undo(self) -> str:
        from skelex_desktop.core.review.session import ReviewSession

        session = ReviewSession(self.workspace.db, "self-test")
        try:
            session.open(self.image_ids[0])
            session.select_task(LABEL_TASK)
            if not session.choose(LABEL_INDEX):
                raise StepFailed(f"the session has no task {LABEL_TASK!r} for the image")
            written = self._stored_label(session)
            if written is None:
                raise StepFailed("the label was not stored")
            session.undo()
            if self._stored_label(session) is not None:
                raise StepFailed("the undone label is still the current decision")
            session.redo()
            again = self._stored_label(session)
            if again != written:
                raise StepFailed(f"redo stored {again!r}, the label was {written!r}")
        finally:
            session.close()
        return f"{LABEL_TASK}={written!r} written, undone (gone), redone"

    @staticmethod
    def _stored_label(session: Any) -> Any:
        if not session.wait(30):
            raise StepFailed("the decision was not stored within 30 s")
        session.reload()
        state = session.task_state(LABEL_TASK)
        return None if state is None or state.label_id is None else state.value

    def export_csv(self) -> str:
        from skelex_desktop.core.export.exporter import export_labelled_set
        from skelex_desktop.core.export.options import ExportOptions, Selection

        options = ExportOptions(
            out=self.data_dir / "export",
            formats=("csv",),
            selection=Selection(status="any"),
            images="none",
        )
        result = export_labelled_set(self.workspace.db, options, data_dir=self.data_dir)
        table = result.out / "labels.csv"
        with table.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        values = [row.get(LABEL_TASK) for row in rows]
        if values != ["1"]:
            raise StepFailed(f"{table} holds {LABEL_TASK} values {values}, expected ['1']")
        return f"{table} ({len(rows)} labelled image, {result.files} files with the manifest)"

    def window(self) -> str:
        if self.window_step is None:
            return "skipped: no display (set DISPLAY, or QT_QPA_PLATFORM=offscreen)"
        return self.window_step(self.workspace)
