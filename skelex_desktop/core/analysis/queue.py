"""Analysis on several machines: a job queue in the shared PostgreSQL database (procrastinate).

`analyze --queue` defers one job per image; `skelex-desktop worker` processes, on any machine
that reaches the database, take the jobs and run the one pipeline (`analyse_images`) on their
image with the package the job names. The queue is procrastinate's own tables and functions
(`queue init` applies its schema with its schema manager); what it guarantees is what we rely on:

- a job is taken by one worker (`FOR UPDATE SKIP LOCKED` inside procrastinate's fetch);
- one job per image and package: its key is procrastinate's *queueing lock* (unique while
  waiting) and *lock* (unique while running), so an image is never queued twice nor analysed by
  two workers at once;
- a killed worker stops sending heartbeats; its running job is found by procrastinate's
  `get_stalled_jobs` and put back with `retry_job` by any live worker (one at a time, under an
  advisory lock), and another worker analyses the image;
- a job whose key already has a succeeded job is skipped (the queue records what was
  analysed; a zero-shot prediction alone does not prove it, as it is stored before the heads);
  and while a worker analyses an image it holds a PostgreSQL advisory lock on it, released by
  the server when the worker's connection dies, so even a worker presumed dead cannot write the
  same image at the same time as its replacement. The pipeline itself stores each prediction
  once per image and model version, so a retried image gets no second row.
"""

from __future__ import annotations

import asyncio
import os
import queue as queue_module
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as procrastinate_errors
from procrastinate.job_context import JobContext
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.engine import Database, describe
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.team.setup import ADJUDICATOR, ADMIN, READER

QUEUE = "skelex-analysis"
TASK = "skelex.analyse_image"
# advisory-lock namespaces (the two-integer form): an image being analysed; stalled-job recovery
IMAGE_LOCK = 0x534B0001
RECOVERY_LOCK = 0x534B0002
HEARTBEAT_S = 10.0
STALLED_AFTER_S = 30.0
RECOVERY_EVERY_S = 15.0

_GRANTS = f"""
DO $$ DECLARE r record; g text; BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relname LIKE 'procrastinate%'
             AND c.relkind IN ('r', 'S') LOOP
    FOREACH g IN ARRAY ARRAY['{READER}', '{ADJUDICATOR}', '{ADMIN}'] LOOP
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g) THEN
        IF r.relkind = 'S' THEN
          EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %I TO %I', r.relname, g);
        ELSE
          EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I TO %I', r.relname, g);
        END IF;
      END IF;
    END LOOP;
  END LOOP;
END $$
"""


class QueueError(RuntimeError):
    """The job queue cannot do what was asked; the message says why and what to do."""


class ImageFailed(RuntimeError):
    """The pipeline could not analyse a job's image (unreadable pixels, ...): the job fails
    with this reason and is not retried (the same image would fail again)."""


@dataclass(frozen=True)
class QueueCounts:
    """Analysis jobs by state, and the workers whose heartbeat is recent."""

    todo: int = 0
    doing: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    aborted: int = 0
    workers: int = 0

    @property
    def total(self) -> int:
        return self.todo + self.doing + self.succeeded + self.failed + self.cancelled + self.aborted

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.todo} to do, {self.doing} running, {self.succeeded} done, {self.failed} "
            f"failed; {self.workers} worker(s)"
        )


@dataclass
class EnqueueResult:
    """What `analyze --queue` deferred: new jobs, images already waiting or running, images
    the queue already analysed with this package."""

    model: str
    package: str
    enqueued: list[int] = field(default_factory=list)
    already_queued: list[int] = field(default_factory=list)
    already_analysed: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs: jobs at once, stop when the queue is empty (`once`), heartbeat and
    the silence after which another worker takes a worker's job back."""

    concurrency: int = 1
    once: bool = False
    heartbeat_s: float = HEARTBEAT_S
    stalled_after_s: float = STALLED_AFTER_S
    recovery_every_s: float = RECOVERY_EVERY_S


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def require_postgres(url: str) -> None:
    if not is_postgres(url):
        raise QueueError(
            f"analysis workers need the shared PostgreSQL database, not {describe(url)}: give "
            "--db postgresql://USER@HOST/DATABASE (see docs/TEAM.md, 'Analysis workers'); on "
            "SQLite run `analyze` without --queue"
        )


def conninfo(url: str) -> str:
    """libpq's URI for an SQLAlchemy URL (`postgresql+psycopg://...` -> `postgresql://...`);
    a password missing from it comes from ~/.pgpass or PGPASSWORD, as for the window."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def job_key(package_sha256: str, image_id: int) -> str:
    """The queueing lock and lock of an image's job: one per image and package."""
    return f"analyse:{package_sha256[:16]}:{image_id}"


def application_name(role: str) -> str:
    """How this process shows in pg_stat_activity: what it is, the host and its pid."""
    return f"skelex-desktop {role} {socket.gethostname()}:{os.getpid()}"[:63]


def _server_message(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else repr(exc)


JobHandler = Callable[[JobContext, int, str, str], dict[str, Any]]


class JobQueue:
    """procrastinate's App on the database `url`, with the analysis task. Open it (`with`)
    to enqueue or count; a worker runs it with `AnalysisWorker`."""

    def __init__(self, url: str, handler: JobHandler | None = None, role: str = "client") -> None:
        require_postgres(url)
        self.url = url
        self.conninfo = conninfo(url)
        self.role = role
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self.conninfo,
                min_size=1,
                max_size=4,
                kwargs={"application_name": application_name(role)},
            )
        )
        self._handler = handler

        def analyse_image_job(context: JobContext, image_id: int, model: str, package: str) -> Any:
            if self._handler is None:
                raise QueueError("this process only enqueues; run `skelex-desktop worker`")
            return self._handler(context, image_id, model, package)

        self.task = self.app.task(
            name=TASK,
            queue=QUEUE,
            pass_context=True,
            # a lost connection, or two workers registering the same model version at once
            # (the unique key lets one through; the other's retry finds the row)
            retry=procrastinate.RetryStrategy(
                max_attempts=3,
                wait=2,
                retry_exceptions={OperationalError, psycopg.OperationalError, IntegrityError},
            ),
        )(analyse_image_job)

    def __enter__(self) -> JobQueue:
        try:
            with self._connect():  # fails at once (the pool would retry for half a minute)
                pass
            self.app.open()
        except (psycopg.Error, procrastinate_errors.ConnectorException) as exc:
            raise QueueError(
                f"cannot connect to {describe(self.url)}: {_server_message(exc)}"
            ) from exc
        return self

    def __exit__(self, *_exc: object) -> None:
        self.app.close()

    # -- reading ---------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.conninfo, autocommit=True, application_name=application_name(self.role)
        )

    def installed(self) -> bool:
        """Whether `queue init` has put procrastinate's tables into this database."""
        with self._connect() as conn:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def require_installed(self) -> None:
        if not self.installed():
            raise QueueError(
                f"{describe(self.url)} has no analysis queue yet: an admin runs "
                "`skelex-desktop queue init` once (see docs/TEAM.md, 'Analysis workers')"
            )

    def counts(self, stalled_after_s: float = STALLED_AFTER_S) -> QueueCounts:
        """The analysis jobs by state (procrastinate's `list_queues`) and the live workers."""
        self.require_installed()
        rows = list(self.app.job_manager.list_queues(queue=QUEUE, task=TASK))
        states = rows[0] if rows else {}
        with self._connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - make_interval(secs => %s)",
                (stalled_after_s,),
            ).fetchone()
        return QueueCounts(
            **{k: int(states.get(k, 0)) for k in ("todo", "doing", "succeeded", "failed")},
            cancelled=int(states.get("cancelled", 0)),
            aborted=int(states.get("aborted", 0)),
            workers=int(row[0]) if row else 0,
        )

    # -- writing ---------------------------------------------------------------------------

    def init(self) -> bool:
        """Apply procrastinate's schema (its schema manager) when it is not there, and let the
        team's groups use it; True when it was created. Run by an admin (or the superuser)."""
        created = False
        try:
            if not self.installed():
                self.app.schema_manager.apply_schema()
                created = True
            with self._connect() as conn:
                conn.execute(_GRANTS.encode())
        except (psycopg.Error, procrastinate_errors.ConnectorException) as exc:
            raise QueueError(
                f"cannot set up the analysis queue in {describe(self.url)}: "
                f"{_server_message(exc)}; run `queue init` as an admin or the PostgreSQL "
                "superuser"
            ) from exc
        return created

    def enqueue(self, settings: Settings, image_ids: Iterable[int], model: str) -> EnqueueResult:
        """One job per image for package `model` (its sha256 is the job's identity); images
        already waiting or running, and those the queue analysed with this package, are not
        queued again."""
        self.require_installed()
        manifest = Registry.from_settings(settings).read(model)
        result = EnqueueResult(model=model, package=manifest.sha256)
        known: dict[str, str] = {}
        for status in ("succeeded", "doing", "todo"):
            for job in self.app.job_manager.list_jobs(queue=QUEUE, task=TASK, status=status):
                if job.lock:
                    known.setdefault(job.lock, status)
        for image_id in image_ids:
            key = job_key(manifest.sha256, image_id)
            state = known.get(key)
            if state == "succeeded":
                result.already_analysed.append(image_id)
                continue
            if state is not None:
                result.already_queued.append(image_id)
                continue
            try:
                self.task.configure(lock=key, queueing_lock=key).defer(
                    image_id=image_id, model=model, package=manifest.sha256
                )
            except procrastinate_errors.AlreadyEnqueued:
                result.already_queued.append(image_id)
                continue
            result.enqueued.append(image_id)
        return result


def queue_counts(url: str) -> QueueCounts | None:
    """The queue's counts, or None when the database has no queue (SQLite, or no `queue
    init`): what the window's status bar polls."""
    if not is_postgres(url):
        return None
    with JobQueue(url, role="window") as jobs:
        if not jobs.installed():
            return None
        return jobs.counts()


class AnalysisWorker:
    """Takes analysis jobs from the queue and runs the pipeline on their images, with this
    machine's packages and data dir; `log` gets one line per job."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        options: WorkerOptions,
        log: Callable[[str], None] = print,
    ) -> None:
        self.db = db
        self.settings = settings
        self.options = options
        self.log = log
        self.jobs = JobQueue(settings.database_url, handler=self._run_job, role="worker")
        self.done = 0
        self.failed = 0
        self.recovered = 0
        self._services: dict[str, queue_module.SimpleQueue[ErrorMapService]] = {}
        self._services_lock = threading.Lock()

    # -- a job -----------------------------------------------------------------------------

    @contextmanager
    def _service(self, model: str) -> Iterator[ErrorMapService]:
        """A loaded package runtime for one running job (one per concurrent job, reused)."""
        with self._services_lock:
            free = self._services.setdefault(model, queue_module.SimpleQueue())
        try:
            service = free.get_nowait()
        except queue_module.Empty:
            service = ErrorMapService(self.settings, model)
        try:
            yield service
        finally:
            free.put(service)

    def _run_job(
        self, context: JobContext, image_id: int, model: str, package: str
    ) -> dict[str, Any]:
        job_id = context.job.id
        key = job_key(package, image_id)
        started = time.monotonic()
        with psycopg.connect(
            self.jobs.conninfo, autocommit=True, application_name=application_name("worker")
        ) as conn:
            # the image is ours until this connection ends (or the server sees it die)
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (IMAGE_LOCK, image_id))
            done_by = conn.execute(
                "SELECT id FROM procrastinate_jobs WHERE lock = %s AND status = 'succeeded' "
                "AND id <> %s ORDER BY id LIMIT 1",
                (key, job_id),
            ).fetchone()
            if done_by is not None:
                self.log(f"job {job_id}: image {image_id} already analysed by job {done_by[0]}")
                return {"image_id": image_id, "skipped": True}
            with self._service(model) as service:
                if service.runtime.manifest.sha256 != package:
                    raise ImageFailed(
                        f"this worker's package {model} is {service.runtime.manifest.sha256[:12]}"
                        f", the job was queued for {package[:12]}: install the same package here"
                    )
                summary = analyse_images(self.db, service, [image_id])
        seconds = time.monotonic() - started
        if summary.failed:
            self.failed += 1
            reason = summary.failed.get(image_id, "failed")
            self.log(f"job {job_id}: image {image_id} failed: {reason}")
            raise ImageFailed(f"image {image_id}: {reason}")
        self.done += 1
        self.log(
            f"job {job_id}: image {image_id} analysed in {seconds:.1f} s "
            f"({summary.head_predictions} head, {summary.region_predictions} region-guided "
            f"prediction(s) added; attempt {context.job.attempts + 1})"
        )
        return {"image_id": image_id, **summary.to_json()}

    # -- the worker ------------------------------------------------------------------------

    async def recover_stalled(self) -> list[int]:
        """Put back the running jobs of workers silent for `stalled_after_s` (killed, or cut
        off): procrastinate's `get_stalled_jobs` and `retry_job`, by one worker at a time."""
        async with await psycopg.AsyncConnection.connect(
            self.jobs.conninfo, autocommit=True, application_name=application_name("worker")
        ) as conn:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s, 0)", (RECOVERY_LOCK,))
            row = await cursor.fetchone()
            if not (row and row[0]):
                return []
            manager = self.jobs.app.job_manager
            stalled = await manager.get_stalled_jobs(
                queue=QUEUE,
                task_name=TASK,
                seconds_since_heartbeat=self.options.stalled_after_s,
            )
            retried = []
            for job in stalled:
                await manager.retry_job(job)
                assert job.id is not None
                retried.append(job.id)
                self.log(
                    f"job {job.id}: its worker stopped answering; put back in the queue "
                    f"(image {job.task_kwargs.get('image_id')})"
                )
            self.recovered += len(retried)
            return retried

    async def _recovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.recovery_every_s)
            try:
                await self.recover_stalled()
            except (psycopg.Error, procrastinate_errors.ConnectorException) as exc:
                self.log(f"stalled-job check failed: {_server_message(exc)}")

    async def run_async(self) -> None:
        async with self.jobs.app.open_async():
            installed = await self._installed()
            if not installed:
                raise QueueError(
                    f"{describe(self.settings.database_url)} has no analysis queue yet: an "
                    "admin runs `skelex-desktop queue init` once"
                )
            await self.recover_stalled()
            recovery = asyncio.create_task(self._recovery_loop())
            try:
                await self.jobs.app.run_worker_async(
                    queues=[QUEUE],
                    name=application_name("worker"),
                    concurrency=self.options.concurrency,
                    wait=not self.options.once,
                    update_heartbeat_interval=self.options.heartbeat_s,
                    stalled_worker_timeout=self.options.stalled_after_s,
                    fetch_job_polling_interval=min(5.0, self.options.recovery_every_s),
                    install_signal_handlers=True,
                )
            finally:
                recovery.cancel()
                await asyncio.gather(recovery, return_exceptions=True)

    async def _installed(self) -> bool:
        async with await psycopg.AsyncConnection.connect(
            self.jobs.conninfo, autocommit=True
        ) as conn:
            cursor = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            row = await cursor.fetchone()
        return bool(row and row[0])

    def run(self) -> None:
        """Work until SIGTERM / SIGINT (the running jobs finish first), or with `once` until
        the queue has nothing left to take."""
        try:
            asyncio.run(self.run_async())
        except (psycopg.Error, procrastinate_errors.ConnectorException) as exc:
            raise QueueError(
                f"the worker lost {describe(self.settings.database_url)}: {_server_message(exc)}"
            ) from exc
