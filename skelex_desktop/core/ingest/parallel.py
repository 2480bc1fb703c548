"""Decoding files in worker processes (spawn/forkserver: safe to call from a GUI thread).

A bounded number of tasks is in flight, so a cancel takes effect quickly and memory stays
flat. If a native decoder kills a worker, the files that were in flight are retried one at a
time in a fresh pool; the one that kills it again is reported as failed.

Workers never outlive the importing process: each gets the reading end of a pipe whose only
writing end this process holds, and exits as soon as that pipe closes (this process exited or
was killed), even in the middle of a file. With the workers gone, the forkserver and
multiprocessing's resource tracker, which they kept alive, exit too.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection

from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.records import DecodedFile, FileTask
from skelex_desktop.core.ingest.worker import WorkerConfig, init_worker, process_task
from skelex_desktop.core.progress import Progress, check

WORKER_MODULE = "skelex_desktop.core.ingest.worker"


def process_context() -> multiprocessing.context.BaseContext:
    """forkserver where the platform has it (fast, never forks this process), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([WORKER_MODULE])
        return context
    return multiprocessing.get_context("spawn")


def decode_sequentially(
    tasks: Iterable[FileTask], config: WorkerConfig, progress: Progress | None
) -> Iterator[DecodedFile | None]:
    """Decode in this process, one file at a time (workers=1)."""
    for task in tasks:
        check(progress)
        yield process_task(task, config)


def decode_in_processes(
    tasks: Iterable[FileTask],
    config: WorkerConfig,
    workers: int,
    progress: Progress | None,
    function: Callable[[FileTask], DecodedFile] = process_task,
) -> Iterator[DecodedFile | None]:
    """Decode in `workers` processes; results arrive in completion order, and None every
    quarter of a second in which none arrived (so the caller can commit and check cancel)."""
    queue = deque(tasks)
    suspects: deque[FileTask] = deque()
    window = workers * 4
    context = process_context()
    parent_alive, lifeline = context.Pipe(duplex=False)  # workers read, only we write

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=init_worker,
            initargs=(config, parent_alive),
        )

    pool = new_pool()
    pending: dict[Future[DecodedFile], FileTask] = {}
    isolated: FileTask | None = None
    try:
        while queue or pending or suspects:
            check(progress)
            if suspects or isolated is not None:
                if not pending:
                    isolated = suspects.popleft()
                    pending[pool.submit(function, isolated)] = isolated
            else:
                while queue and len(pending) < window:
                    task = queue.popleft()
                    pending[pool.submit(function, task)] = task
            done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            if not done:
                yield None
            broken: list[FileTask] = []
            for future in done:
                task = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken.append(task)
                except Exception as exc:
                    yield DecodedFile(task.path, ImportOutcome.FAILED, f"worker error: {exc}")
            if broken:
                pool.shutdown(wait=True, cancel_futures=True)
                if isolated is not None and broken == [isolated]:
                    yield DecodedFile(
                        isolated.path,
                        ImportOutcome.FAILED,
                        "the decoder crashed its worker process (corrupt or hostile file)",
                    )
                else:
                    suspects.extend(broken)
                    suspects.extend(pending.values())
                pending.clear()
                pool = new_pool()
            if isolated is not None and not pending:
                isolated = None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _close(lifeline, parent_alive)


def _close(*connections: Connection) -> None:
    for connection in connections:
        connection.close()
