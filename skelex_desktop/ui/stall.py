"""Measures how long the GUI thread goes without processing events (for tests and benches)."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer


class StallDetector(QObject):
    """A fast timer on the GUI thread; the longest gap between its ticks is the worst stall."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self._interval = interval_ms / 1000.0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.longest_ms = 0.0

    def start(self) -> None:
        self.longest_ms = 0.0
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        self._timer.stop()
        return self.longest_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest_ms = max(self.longest_ms, (now - self._last - self._interval) * 1000.0)
        self._last = now
