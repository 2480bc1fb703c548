"""One serialized executor for database writes, off the front end's thread.

Every decision of a review session is queued here and runs on one background thread in the
order it was made, so a slow database (a shared PostgreSQL server) never freezes a window, and
two writes of one reader never overtake each other. What a write returns, or raises, is handed
back through `deliver`: a front end passes a function that runs a callable on its own thread
(a Qt queued signal); the default runs it at once on the writer thread (tests, the CLI).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
Deliver = Callable[[Callable[[], None]], None]


def call_now(callback: Callable[[], None]) -> None:
    """Deliver a result on the writer thread itself."""
    callback()


class SerialExecutor:
    """Runs submitted work one item at a time, in submission order, on one thread."""

    def __init__(self, deliver: Deliver = call_now, name: str = "skelex-writer") -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._closed = False

    def submit(
        self,
        work: Callable[[], T],
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[None]:
        """Queue `work`; its result goes to `on_done`, an exception to `on_error` (logged when
        nobody listens), both through `deliver`."""

        def run() -> None:
            try:
                result = work()
            except Exception as exc:  # handed to the caller, never lost
                if on_error is None:
                    log.exception("background write failed")
                else:
                    self._deliver(partial(on_error, exc))
                return
            if on_done is not None:
                self._deliver(partial(on_done, result))

        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is shut down; nothing more can be written")
            return self._pool.submit(run)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far has run; False on timeout."""
        with self._lock:
            if self._closed:
                return True
            marker = self._pool.submit(lambda: None)
        try:
            marker.result(timeout)
        except TimeoutError:
            return False
        return True

    def shutdown(self) -> None:
        """Run what is queued, then stop (a queued decision is never dropped)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)
