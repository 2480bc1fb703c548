"""`worker`, `queue init|status` and `analyze --queue`: analysis on several machines."""

from __future__ import annotations

import argparse
import logging
import sys

from skelex_desktop.commands.common import (
    AddCommand,
    CliError,
    emit,
    needs_action,
    open_ws,
    positive_int,
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _database_url(args: argparse.Namespace) -> str:
    from skelex_desktop.core.analysis.queue import QueueError, require_postgres
    from skelex_desktop.core.settings import load_settings

    url = load_settings(data_dir=args.data_dir, db_url=args.db).database_url
    try:
        require_postgres(url)
    except QueueError as exc:
        raise CliError(str(exc)) from exc
    return url


def enqueue_analysis(args: argparse.Namespace) -> int:
    """`analyze --queue [--all | IDS]`: one job per image for the workers."""
    from sqlalchemy import select

    from skelex_desktop.core.analysis.queue import JobQueue, QueueError
    from skelex_desktop.core.db.models import Image
    from skelex_desktop.core.inference.package import PackageError

    url = _database_url(args)
    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            query = select(Image.id).order_by(Image.id)
            known = list(session.scalars(query))
        if args.all:
            ids = known
        else:
            ids = [int(i) for i in args.image_ids]
            missing = sorted(set(ids) - set(known))
            if missing:
                raise CliError(f"no image with id {', '.join(map(str, missing))}")
        model = args.model or ws.settings.active_model
        with JobQueue(url) as jobs:
            result = jobs.enqueue(ws.settings, ids, model)
    except (QueueError, PackageError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    text = f"queued {len(result.enqueued)} analysis job(s) for {model}"
    if result.already_queued:
        text += f"; {len(result.already_queued)} image(s) already queued or running"
    if result.already_analysed:
        text += f"; {len(result.already_analysed)} image(s) already analysed by the queue"
    emit(args, result.to_json(), text + "\nstart `skelex-desktop worker` on any machine")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from skelex_desktop.core.analysis.queue import AnalysisWorker, QueueError, WorkerOptions
    from skelex_desktop.core.inference.session import providers

    _database_url(args)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("worker: %(message)s"))
    library = logging.getLogger("procrastinate")
    library.addHandler(handler)
    library.setLevel(logging.WARNING)
    library.propagate = False
    options = WorkerOptions(
        concurrency=args.concurrency,
        once=args.once,
        heartbeat_s=args.heartbeat,
        stalled_after_s=args.stalled_after,
        recovery_every_s=min(args.heartbeat * 3, args.stalled_after),
    )
    ws = open_ws(args)

    def log(line: str) -> None:
        print(line, flush=True)

    worker = AnalysisWorker(ws.db, ws.settings, options, log=log)
    log(
        f"worker on {ws.db.name}: {args.concurrency} job(s) at once, "
        f"{'until the queue is empty' if args.once else 'until stopped'}; "
        f"onnxruntime providers: {', '.join(providers())}"
    )
    try:
        worker.run()
    except QueueError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    log(
        f"worker stopped: {worker.done} image(s) analysed, {worker.failed} failed, "
        f"{worker.recovered} stalled job(s) put back"
    )
    return 0


def cmd_queue_init(args: argparse.Namespace) -> int:
    from skelex_desktop.core.analysis.queue import JobQueue, QueueError

    url = _database_url(args)
    try:
        with JobQueue(url) as jobs:
            created = jobs.init()
    except QueueError as exc:
        raise CliError(str(exc)) from exc
    text = "analysis queue created" if created else "analysis queue already there"
    emit(args, {"created": created}, text + "; the team's roles may use it")
    return 0


def cmd_queue_status(args: argparse.Namespace) -> int:
    from skelex_desktop.core.analysis.queue import JobQueue, QueueError

    url = _database_url(args)
    try:
        with JobQueue(url) as jobs:
            counts = jobs.counts()
    except QueueError as exc:
        raise CliError(str(exc)) from exc
    emit(args, counts.to_json(), f"analysis jobs: {counts.summary()}")
    return 0


def register(add: AddCommand) -> None:
    wk = add("worker", cmd_worker, "take analysis jobs from the shared database's queue")
    wk.add_argument("--concurrency", type=positive_int, default=1, help="jobs at once (default 1)")
    wk.add_argument("--once", action="store_true", help="stop when the queue has no job left")
    wk.add_argument(
        "--heartbeat",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how often the worker says it is alive (default 10)",
    )
    wk.add_argument(
        "--stalled-after",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="a worker silent this long has its job put back in the queue (default 30)",
    )

    qu = add("queue", needs_action("queue"), "the analysis job queue (PostgreSQL only)")
    actions = qu.add_subparsers(dest="queue_command", metavar="ACTION")
    init = actions.add_parser("init", help="create the queue's tables (as an admin)")
    init.set_defaults(handler=cmd_queue_init)
    init.add_argument("--json", action="store_true")
    status = actions.add_parser("status", help="analysis jobs to do, running, done, failed")
    status.set_defaults(handler=cmd_queue_status)
    status.add_argument("--json", action="store_true")
