"""The part every job dialog shares: Start/Cancel buttons, a progress bar, a status line, and
the wiring of one background Job to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QDialog, QLabel, QProgressBar, QPushButton, QWidget

from skelex_desktop.ui.workers import Job, JobRunner


class JobDialog(QDialog):
    """Subclasses build their form, then call `run_job` from their start action."""

    def __init__(
        self,
        runner: JobRunner,
        start_text: str,
        cancel_text: str,
        status_text: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner = runner
        self.job: Job | None = None
        self.start_button = QPushButton(start_text)
        self.cancel_button = QPushButton(cancel_text)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel)
        self.progress = QProgressBar()
        self.status = QLabel(status_text)
        self.status.setWordWrap(True)

    def run_job(
        self,
        title: str,
        work: Callable[[Any], Any],
        on_done: Callable[[Any], None],
        cancelled: str,
        on_point: Callable[[str, int, float], None] | None = None,
    ) -> Job:
        """Start `work(progress)` in the background; `on_done(result)` gets its result and
        `on_point` every live-curve point it reports."""
        self.job = Job(title, work)
        self.job.progressed.connect(self._progress)
        if on_point is not None:
            self.job.point.connect(on_point)
        self.job.succeeded.connect(on_done)
        self.job.failed.connect(self.finish)
        self.job.cancelled.connect(lambda: self.finish(cancelled))
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        return self.runner.start(self.job)

    def _progress(self, done: int, total: int, current: str) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        if current:
            self.status.setText(current[-90:])

    def finish(self, message: str) -> None:
        """The job ended: say how, and allow a new start."""
        self.status.setText(message)
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling...")
