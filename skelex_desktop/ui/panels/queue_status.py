"""Status-bar indicator of the shared database's analysis queue (jobs to do, running, done,
failed, live workers), its counts read every few seconds off the GUI thread."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel, QStatusBar
from sqlalchemy.engine import make_url

POLL_MS = 4000


def _read_counts(url: str) -> Any:
    from skelex_desktop.core.analysis.queue import queue_counts

    return queue_counts(url)


class QueueStatus(QLabel):
    """'Analysis queue: 5 to do, 2 running, 10 done, 0 failed; 3 worker(s)'; hidden while the
    database has no queue or it never had a job. A failed read shows 'unavailable' with the
    reason as its tooltip."""

    counts_read = Signal(object)  # QueueCounts, None (no queue) or an error message

    def __init__(
        self, url: str, interval_ms: int = POLL_MS, read: Callable[[str], Any] = _read_counts
    ) -> None:
        super().__init__("")
        self._url = url
        self._read = read
        self._pending = False
        self._stopped = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-status")
        self.counts_read.connect(self._show)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)
        self.setVisible(False)
        self._timer.start()
        self.poll()

    def poll(self) -> None:
        """Read the counts in the background (one read at a time)."""
        if self._pending or self._stopped:
            return
        self._pending = True
        self._executor.submit(self._read_in_background)

    def _read_in_background(self) -> None:
        try:
            result = self._read(self._url)
        except Exception as exc:  # shown in the status bar, never raised in this thread
            text = str(exc).strip()
            result = text.splitlines()[0] if text else repr(exc)
        with contextlib.suppress(RuntimeError):  # the widget was deleted meanwhile
            self.counts_read.emit(result)

    def _show(self, result: Any) -> None:
        self._pending = False
        if self._stopped:
            return
        if isinstance(result, str):
            self.setText("Analysis queue: unavailable")
            self.setToolTip(result)
            self.setVisible(True)
            return
        if result is None or (result.total == 0 and result.workers == 0):
            self.setVisible(False)
            return
        self.setText(f"Analysis queue: {result.summary()}")
        self.setToolTip("skelex-desktop worker processes take these jobs (queue status)")
        self.setVisible(True)

    def stop(self) -> None:
        self._stopped = True
        self._timer.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)


def add_queue_status(bar: QStatusBar, url: str) -> QueueStatus | None:
    """The indicator in `bar` when the workspace is on PostgreSQL (None on SQLite)."""
    if make_url(url).get_backend_name() != "postgresql":
        return None
    status = QueueStatus(url)
    bar.addPermanentWidget(status)
    return status
