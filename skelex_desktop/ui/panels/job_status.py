"""Status-bar widget: the running background job, its progress and a Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from skelex_desktop.ui.workers import Job, JobRunner


class JobStatus(QWidget):
    """Shows the newest running job; hidden when nothing runs."""

    def __init__(self, runner: JobRunner) -> None:
        super().__init__()
        self._runner = runner
        self._job: Job | None = None
        self.text = QLabel("")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.text, self.bar, self.cancel_button):
            layout.addWidget(widget)
        runner.jobs_changed.connect(self._refresh)
        self._refresh()

    def _refresh(self) -> None:
        job = self._runner.running[-1] if self._runner.running else None
        if job is self._job:
            self.setVisible(job is not None)
            return
        if self._job is not None:
            self._job.progressed.disconnect(self._on_progress)
        self._job = job
        self.setVisible(job is not None)
        if job is not None:
            job.progressed.connect(self._on_progress)
            self.text.setText(job.title)
            self.bar.setRange(0, 0)
            self.cancel_button.setEnabled(True)

    def _on_progress(self, done: int, total: int, current: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        label = self._job.title if self._job else ""
        self.text.setText(f"{label}: {current[-48:]}" if current else label)

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.cancel_button.setEnabled(False)
            self.text.setText(f"{self._job.title}: cancelling...")
