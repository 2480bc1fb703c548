"""Progress and cooperative cancellation for long-running core functions.

Every long job (import, analysis, training, export, synthesis) is a plain function that takes a
`Progress`. The CLI passes a text bar, the GUI an adapter that emits Qt signals, tests a
`RecordingProgress`. A job calls `check()` between units of work; when the user cancelled, it
raises `Cancelled` and the job leaves its storage consistent.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable

if TYPE_CHECKING:  # tqdm is imported when the first bar is drawn
    from tqdm import tqdm


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
    """A one-line progress bar on a terminal stream (stderr by default), drawn by tqdm.

    `[####------] 4/10 00:12<00:18 <current item or status>`: bar `width` characters wide,
    elapsed and remaining time, the last 40 characters of the current item (else the status).
    tqdm throttles redraws to 10 Hz and draws nothing when the stream is not a terminal. Each
    `set_total` restarts the bar for the new phase; `finish` ends its line. tqdm is imported
    when the first bar is drawn, so importing this module stays light.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        super().__init__()
        self._stream = stream or sys.stderr
        self._width = width
        self._bar: tqdm | None = None  # made on the first report
        self._draw = threading.Lock()

    def _new_bar(self, total: int | None, tail: str) -> tqdm:
        from tqdm import tqdm

        return tqdm(
            desc=tail,
            file=self._stream,
            total=total,
            bar_format=f"[{{bar:{self._width}}}] {{n_fmt}}/{{total_fmt}} "
            "{elapsed}<{remaining} {desc}",
            ascii="-#",
            mininterval=0.1,
            disable=None,  # None: draw only on a terminal
            leave=True,
        )

    def _report(self) -> None:
        with self._draw:
            total = self.total or None
            tail = (self.current or self.status)[-40:]
            if self._bar is None:
                self._bar = self._new_bar(total, tail)
            bar = self._bar
            if bar.disable:  # not a terminal
                return
            if total != bar.total or self.done < bar.n:  # a new phase
                bar.total = total  # before reset: reset(total=None) keeps the old total
                bar.reset()
            if tail != bar.desc:
                bar.set_description_str(tail, refresh=False)
            bar.update(self.done - bar.n)  # redraws when 0.1 s have passed
            if total and self.done >= total:
                bar.refresh()  # a finished phase is always shown complete

    def finish(self) -> None:
        """End the bar's line so later output starts on a fresh one."""
        with self._draw:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


def check(progress: Progress | None) -> None:
    """Raise `Cancelled` when the caller asked to stop."""
    if progress is not None and progress.cancelled():
        raise Cancelled("cancelled by the user")
