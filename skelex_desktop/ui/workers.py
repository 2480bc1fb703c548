"""Run core jobs off the GUI thread; their Progress becomes Qt signals, their errors messages.

A job is a plain core function `fn(progress) -> result`. `JobRunner.start` runs it in a worker
thread and emits `progressed`, `succeeded` or `failed` on the GUI thread. A cancelled job ends in
`cancelled`. Nothing raised in a job is swallowed: it reaches `failed` and the log.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from skelex_desktop.core.progress import BaseProgress, Cancelled

log = logging.getLogger(__name__)


class SignalProgress(BaseProgress):
    """A Progress whose every change is forwarded to Qt signals (thread-safe, queued)."""

    def __init__(
        self,
        emit: Callable[[int, int, str], None],
        emit_point: Callable[[str, int, float], None] | None = None,
    ) -> None:
        super().__init__()
        self._emit = emit
        self._emit_point = emit_point

    def _report(self) -> None:
        self._emit(self.done, self.total, self.current or self.status)

    def _report_point(self, series: str, step: int, value: float) -> None:
        if self._emit_point is not None:
            self._emit_point(series, step, value)


class Job(QObject):
    """One background job; signals arrive on the thread that owns the Job (the GUI thread)."""

    progressed = Signal(int, int, str)
    point = Signal(str, int, float)  # a live-curve point: series, step, value
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, title: str, fn: Callable[[BaseProgress], Any]) -> None:
        super().__init__()
        self.title = title
        self._fn = fn
        self.progress = SignalProgress(self.progressed.emit, self.point.emit)
        self._thread: QThread | None = None

    def cancel(self) -> None:
        self.progress.cancel()

    def run_in_thread(self) -> None:
        job = self

        class _Thread(QThread):
            def run(self) -> None:  # runs in the worker thread
                try:
                    result = job._fn(job.progress)
                except Cancelled:
                    job.cancelled.emit()
                except Exception as exc:  # every failure is shown and logged
                    log.error("job %r failed:\n%s", job.title, traceback.format_exc())
                    job.failed.emit(f"{job.title} failed: {exc}")
                else:
                    job.succeeded.emit(result)
                finally:
                    job.finished.emit()

        self._thread = _Thread()
        self._thread.start()

    def wait(self, ms: int = 30_000) -> bool:
        """Block until the worker thread ends (tests and shutdown)."""
        return self._thread.wait(ms) if self._thread is not None else True


class JobRunner(QObject):
    """Starts jobs and keeps them alive until they finish; tells the UI what is running."""

    jobs_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.running: list[Job] = []

    def start(self, job: Job) -> Job:
        self.running.append(job)
        job.finished.connect(self._on_finished)  # bound slot: delivered on the GUI thread
        self.jobs_changed.emit()
        job.run_in_thread()
        return job

    def _on_finished(self) -> None:
        job = self.sender()
        if job in self.running:
            self.running.remove(job)
        self.jobs_changed.emit()

    def cancel_all(self, wait_ms: int = 30_000) -> None:
        for job in list(self.running):
            job.cancel()
        for job in list(self.running):
            job.wait(wait_ms)
