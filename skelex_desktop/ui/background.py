"""Background pixels and analysis for the viewer: the open image first, then prefetch.

One worker thread takes requests from a priority queue (open image before prefetch), so the two
cores are not fought over by several analyses at once and the GUI thread only receives results.
Decoded frames and analyses are kept in small LRU caches, so moving to a prefetched image costs
only the drawing.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

FOREGROUND, PREFETCH = 0, 1
STOP = object()


class LruCache:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._data


class BackgroundLoader(QObject):
    """Loads frames (`load_frame(path, frame)`) and analyses (`analyse(image_id)`) off the GUI
    thread; results arrive as signals on the GUI thread."""

    frame_ready = Signal(int, object)
    analysis_ready = Signal(int, object)
    failed = Signal(int, str, str)  # image id, what ("pixels"/"analysis"), message

    def __init__(
        self,
        load_frame: Callable[[Path, int], Any],
        analyse: Callable[[int], Any] | None,
        cache_size: int = 4,
    ) -> None:
        super().__init__()
        self._load_frame = load_frame
        self._analyse = analyse
        self.frames = LruCache(cache_size)
        self.analyses = LruCache(cache_size * 4)
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._pending: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self.busy = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skelex-background", daemon=True)
        self._thread.start()

    def request(
        self, image_id: int, path: Path, frame: int, prefetch: bool = False, analyse: bool = True
    ) -> None:
        """Pixels, then (unless `analyse` is False: a companion in the study view) analysis, of
        one image; cached results are emitted at once."""
        cached = self.frames.get(image_id)
        if cached is not None and not prefetch:
            self.frame_ready.emit(image_id, cached)
        elif cached is None:
            self._enqueue("pixels", image_id, (path, frame), prefetch)
        if self._analyse is None or not analyse:
            return
        done = self.analyses.get(image_id)
        if done is not None and not prefetch:
            # after the image has been painted: the overlay follows on the next event-loop turn
            QTimer.singleShot(0, lambda: self.analysis_ready.emit(image_id, done))
        elif done is None:
            self._enqueue("analysis", image_id, None, prefetch)

    def _enqueue(self, kind: str, image_id: int, payload: Any, prefetch: bool) -> None:
        with self._lock:
            key = (kind, image_id)
            if key in self._pending and prefetch:
                return
            self._pending.add(key)
        priority = PREFETCH if prefetch else FOREGROUND
        step = 0 if kind == "pixels" else 1
        self._queue.put((priority, step, next(self._order), kind, image_id, payload, prefetch))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item[3] is STOP:
                return
            _priority, _step, _n, kind, image_id, payload, prefetch = item
            self.busy.set()
            try:
                self._work(kind, image_id, payload, prefetch)
            finally:
                with self._lock:
                    self._pending.discard((kind, image_id))
                if self._queue.empty():
                    self.busy.clear()

    def _work(self, kind: str, image_id: int, payload: Any, prefetch: bool) -> None:
        try:
            if kind == "pixels":
                result = self.frames.get(image_id)
                if result is None:
                    result = self._load_frame(*payload)
                    self.frames.put(image_id, result)
                if not prefetch:
                    self.frame_ready.emit(image_id, result)
            else:
                assert self._analyse is not None
                result = self.analyses.get(image_id)
                if result is None:
                    result = self._analyse(image_id)
                    self.analyses.put(image_id, result)
                if not prefetch:
                    self.analysis_ready.emit(image_id, result)
        except Exception as exc:  # reported in the window and the log, never swallowed
            log.exception("background %s of image %s failed", kind, image_id)
            self.failed.emit(image_id, kind, str(exc))

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put((-1, 0, -1, STOP, 0, None, False))
        self._thread.join(timeout)
