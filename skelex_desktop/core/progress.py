"""Progress and cooperative cancellation for long-running core functions.

Every long job (import, analysis, training, export, synthesis) is a plain function that takes a
`Progress`. The CLI passes a text bar, the GUI an adapter that emits Qt signals, tests a
`RecordingProgress`. A job calls `check()` between units of work; when the user cancelled, it
raises `Cancelled` and the job leaves its storage consistent.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Protocol, TextIO, runtime_checkable


class Cancelled(Exception):
    """Raised inside a job when its Progress reports a cancellation request."""


@runtime_checkable
class Progress(Protocol):
    """What a long-running job reports to and asks of its caller."""

    def set_total(self, total: int) -> None:
        """Start a phase of `total` units; `done` counts from zero again."""
        ...

    def advance(self, n: int = 1, current: str | None = None) -> None: ...

    def set_status(self, text: str) -> None: ...

    def cancelled(self) -> bool: ...


class BaseProgress:
    """Thread-safe counters and a cancel flag; subclasses override `_report`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self.total = 0
        self.done = 0
        self.status = ""
        self.current: str | None = None
        self.series: dict[str, list[tuple[int, float]]] = {}

    def set_total(self, total: int) -> None:
        """Start a phase of `total` units (a multi-phase job calls this once per phase)."""
        with self._lock:
            self.total = max(0, int(total))
            self.done = 0
        self._report()

    def advance(self, n: int = 1, current: str | None = None) -> None:
        with self._lock:
            self.done += n
            if current is not None:
                self.current = current
        self._report()

    def set_status(self, text: str) -> None:
        with self._lock:
            self.status = text
        self._report()

    def report(self, series: str, step: int, value: float) -> None:
        """One point of a named curve (e.g. a metric per fold), for live plots."""
        with self._lock:
            self.series.setdefault(series, []).append((step, float(value)))
        self._report_point(series, step, float(value))

    def _report_point(self, series: str, step: int, value: float) -> None:
        """Hook called for every curve point; the base class shows nothing."""

    def cancel(self) -> None:
        """Ask the job to stop at its next `check()`."""
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _report(self) -> None:
        """Hook called after every change; the base class reports nothing."""


class NullProgress(BaseProgress):
    """Progress that reports nothing and is cancelled only through `cancel()`."""


class RecordingProgress(BaseProgress):
    """Keeps every status line; optionally cancels itself after `cancel_after` units."""

    def __init__(self, cancel_after: int | None = None) -> None:
        super().__init__()
        self.statuses: list[str] = []
        self._cancel_after = cancel_after

    def _report(self) -> None:
        if self.status and (not self.statuses or self.statuses[-1] != self.status):
            self.statuses.append(self.status)
        if self._cancel_after is not None and self.done >= self._cancel_after:
            self.cancel()


class TextProgress(BaseProgress):
    """A one-line progress bar on a terminal stream (stderr by default), throttled to 10 Hz."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        super().__init__()
        self._stream = stream or sys.stderr
        self._width = width
        self._last = 0.0
        self._tty = hasattr(self._stream, "isatty") and self._stream.isatty()

    def _report(self) -> None:
        now = time.monotonic()
        if not self._tty or (now - self._last < 0.1 and self.done < self.total):
            return
        self._last = now
        frac = self.done / self.total if self.total else 0.0
        filled = int(frac * self._width)
        bar = "#" * filled + "-" * (self._width - filled)
        tail = self.current or self.status
        self._stream.write(f"\r[{bar}] {self.done}/{self.total} {tail[-40:]:<40}")
        self._stream.flush()

    def finish(self) -> None:
        """End the bar's line so later output starts on a fresh one."""
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def check(progress: Progress | None) -> None:
    """Raise `Cancelled` when the caller asked to stop."""
    if progress is not None and progress.cancelled():
        raise Cancelled("cancelled by the user")
