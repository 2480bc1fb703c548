"""Team mode under load, on a throw-away local PostgreSQL cluster (issue #19).

1. Decisions: R reader processes (each its own LOGIN role of the team, started together) make D
   decisions each with `confirm_label` (one committed transaction per decision, what the
   window's writer does for every key press), on the same images. Printed: decisions lost
   (goal 0: every decision is a stored row of its reader and each reader's current value is
   their last one), p95 decision latency as a ratio to the goal (< 50 ms), throughput of all
   readers together.
2. Workers: N images queued with `analyze --queue`, analysed by 1 `skelex-desktop worker
   --once` process, then (same images, a second database) by 3 at once; each worker has its own
   fresh data dir, as on its own machine. Printed: wall time of 3 workers as a ratio to 1 worker
   (what a second and third machine buy; on one machine they share its cores), images analysed
   twice (goal 0: "analysed" log lines per image, and prediction rows per image, task and model
   version), job retries.

Nothing asserts; the figures are printed. The cluster comes from tests/core/postgres_server.py
(a PostgreSQL server must be installed: initdb, pg_ctl).

Run: `.venv/bin/python bench/team.py [--readers 8] [--decisions 500] [--images 300]`
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

P95_GOAL_MS = 50.0
TASK, CLASSES = "kl_grade", 5


def reader_process(args: argparse.Namespace) -> None:
    """One reader: waits for the start file, then decides; writes its latencies and its
    decisions as JSON."""
    from skelex_desktop.core.review.labels import confirm_label
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

    ws = open_workspace(Settings(data_dir=Path(args.data_dir), db_url=args.url))
    ids = [int(i) for i in args.ids.split(",")]
    visits: Counter[int] = Counter()
    latencies, cpu, stored, errors = [], [], [], []
    start_file = Path(args.start)
    while not start_file.exists():
        time.sleep(0.01)
    for k in range(args.decisions):
        image_id = ids[(k * 7 + args.offset) % len(ids)]
        value = (visits[image_id] + args.offset) % CLASSES  # never the value it has now
        visits[image_id] += 1
        began, began_cpu = time.perf_counter(), time.process_time()
        try:
            confirm_label(ws.db, image_id, TASK, value, ws.settings.reader)
        except Exception as exc:  # a refused decision is counted, not hidden
            errors.append(str(exc).splitlines()[0])
            continue
        latencies.append((time.perf_counter() - began) * 1000.0)
        cpu.append((time.process_time() - began_cpu) * 1000.0)
        stored.append((image_id, value))
    ws.close()
    Path(args.out).write_text(
        json.dumps(
            {
                "reader": ws.settings.reader,
                "latencies_ms": latencies,
                "cpu_ms": cpu,
                "decisions": stored,
                "errors": errors,
            }
        )
    )


def _cli(url: str, data_dir: Path, *args: str) -> None:
    from skelex_desktop.cli import main

    code = main(["--db", url, "--data-dir", str(data_dir), *args])
    if code != 0:
        raise SystemExit(f"{' '.join(args)} failed ({code})")


def _database(cluster_url: str, name: str, user: str = "skelex") -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(cluster_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(cluster_url).set(database=name).render_as_string(hide_password=False)


def _as(url: str, user: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=user).render_as_string(hide_password=False)


def _team(cluster_url: str, name: str, root: Path, readers: int) -> str:
    """A team database: init, admin 'ann', readers r0..; the admin's URL."""
    url = _database(cluster_url, name)
    _cli(url, root / "su", "team", "init")
    _cli(url, root / "su", "team", "add-user", "ann", "--role", "admin")
    admin = _as(url, "ann")
    for i in range(readers):
        _cli(admin, root / "ann", "team", "add-user", f"r{i}", "--role", "reader")
    return admin


def _import(admin: Path | str, data_dir: Path, source: Path) -> list[int]:
    from sqlalchemy import select

    from skelex_desktop.core.db.models import Image
    from skelex_desktop.core.ingest import ImportOptions, import_paths
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

    ws = open_workspace(Settings(data_dir=data_dir, db_url=str(admin)))
    folders = [p for p in source.iterdir() if p.is_dir() and p.name != "masks"]
    import_paths(ws.db, folders, ImportOptions(data_dir=data_dir, workers=1))
    with ws.db.read() as session:
        ids = list(session.scalars(select(Image.id).order_by(Image.id)))
    ws.close()
    return ids


def _readers(
    admin: str, root: Path, ids: list[int], names: list[str], n: int
) -> tuple[list[dict], float]:
    """`names` decide `n` times each in their own processes, started together."""
    start = root / f"start-{names[0]}"
    procs, outs = [], []
    for i, name in enumerate(names):
        out = root / f"reader-{name}.json"
        command = [
            sys.executable,
            __file__,
            "--reader-process",
            "--url",
            _as(admin, name),
            "--data-dir",
            str(root / name),
            "--ids",
            ",".join(map(str, ids)),
            "--decisions",
            str(n),
            "--offset",
            str(i),
            "--start",
            str(start),
            "--out",
            str(out),
        ]
        procs.append(subprocess.Popen(command, cwd=REPO))
        outs.append(out)
    time.sleep(5.0)  # every reader has opened its workspace and waits for the start file
    began = time.perf_counter()
    start.touch()
    for proc in procs:
        proc.wait()
    wall = time.perf_counter() - began
    return [json.loads(out.read_text()) for out in outs], wall


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")


def bench_decisions(cluster_url: str, root: Path, source: Path, readers: int, n: int) -> None:
    from sqlalchemy import func, select

    from skelex_desktop.core.db.models import Label, Task
    from skelex_desktop.core.review.labels import normalise_value
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

    admin = _team(cluster_url, "decisions", root, readers)
    _cli(admin, root / "ann", "team", "add-user", "solo", "--role", "reader")
    ids = _import(admin, root / "ann-decisions", source)
    solo, _wall = _readers(admin, root, ids, ["solo"], max(1, n // 5))
    results, wall = _readers(admin, root, ids, [f"r{i}" for i in range(readers)], n)
    ws = open_workspace(Settings(data_dir=root / "ann-decisions", db_url=admin))
    lost = 0
    with ws.db.read() as session:
        task = session.scalars(select(Task).where(Task.name == TASK)).one()
        task_id = task.id
        for result in results:
            reader = result["reader"]
            rows = session.scalar(
                select(func.count())
                .select_from(Label)
                .where(Label.reader == reader, Label.task_id == task_id)
            )
            current = dict(
                session.execute(
                    select(Label.image_id, Label.value).where(
                        Label.reader == reader,
                        Label.task_id == task_id,
                        Label.superseded_by.is_(None),
                        Label.retracted_at.is_(None),
                    )
                ).all()
            )
            last = {i: normalise_value(task, value) for i, value in result["decisions"]}
            lost += max(0, len(result["decisions"]) - int(rows or 0))
            lost += sum(1 for image_id, value in last.items() if current.get(image_id) != value)
    ws.close()
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    errors = sum(len(r["errors"]) for r in results)
    made = len(latencies)
    p95 = _p95(latencies)
    solo_p95 = _p95(solo[0]["latencies_ms"])
    print(
        f"decisions: {readers} reader processes x {n} on {len(ids)} images, {made} stored, "
        f"{errors} refused"
    )
    print(f"  decisions lost: {lost} (goal 0)")
    print(
        f"  p95 decision latency: {p95:.1f} ms -> {p95 / P95_GOAL_MS:.2f} of the 50 ms goal "
        f"(median {statistics.median(latencies):.1f} ms); {p95 / solo_p95:.1f} x the p95 of "
        f"one reader alone ({solo_p95:.1f} ms: the baseline on this machine at this moment)"
    )
    cpu = statistics.median(x for r in results for x in r["cpu_ms"])
    print(
        f"  the reader process's own CPU per decision: median {cpu:.1f} ms ({_cores()} cores "
        f"for {readers} readers and the server here; each reader has its own machine in use)"
    )
    print(f"  throughput: {made / wall:.0f} decisions/s, all readers together ({wall:.1f} s)")


def _run_workers(admin: str, root: Path, name: str, count: int) -> tuple[float, list[str]]:
    logs = [root / f"{name}-worker{i}.log" for i in range(count)]
    procs = []
    began = time.perf_counter()
    for i, log in enumerate(logs):
        command = [
            sys.executable,
            "-m",
            "skelex_desktop",
            "--db",
            admin,
            "--data-dir",
            str(root / f"{name}-machine{i}"),
            "worker",
            "--once",
        ]
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT))
    for proc in procs:
        proc.wait()
    return time.perf_counter() - began, [log.read_text() for log in logs]


def bench_workers(cluster_url: str, root: Path, source: Path) -> None:
    import psycopg
    from sqlalchemy import func, select

    from skelex_desktop.core.analysis.queue import conninfo
    from skelex_desktop.core.db.models import Prediction
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

    walls, figures = {}, {}
    for count in (1, 3):
        name = f"workers{count}"
        admin = _team(cluster_url, name, root, 0)
        ids = _import(admin, root / f"ann-{name}", source)
        _cli(admin, root / "ann", "queue", "init")
        _cli(admin, root / "ann", "analyze", "--queue", "--all")
        walls[count], logs = _run_workers(admin, root, name, count)
        analysed = Counter(
            int(line.split("image ")[1].split()[0])
            for text in logs
            for line in text.splitlines()
            if " analysed in " in line
        )
        ws = open_workspace(Settings(data_dir=root / f"ann-{name}", db_url=admin))
        with ws.db.read() as session:
            rows = (
                session.execute(
                    select(func.count())
                    .select_from(Prediction)
                    .group_by(Prediction.image_id, Prediction.task_id, Prediction.model_version_id)
                )
                .scalars()
                .all()
            )
        ws.close()
        with psycopg.connect(conninfo(admin)) as conn:
            states = dict(
                conn.execute(
                    "SELECT status, count(*) FROM procrastinate_jobs GROUP BY status"
                ).fetchall()
            )
            retries = conn.execute(
                "SELECT coalesce(sum(attempts - 1), 0) FROM procrastinate_jobs"
            ).fetchone()[0]
        figures[count] = {
            "twice": sum(1 for c in analysed.values() if c > 1),
            "missing": len(set(ids) - set(analysed)),
            "duplicate_rows": sum(1 for c in rows if c > 1),
            "states": states,
            "retries": retries,
        }
    n = len(ids)
    print(f"workers: {n} images, worker --once processes, each a fresh data dir")
    for count in (1, 3):
        f = figures[count]
        print(
            f"  {count} worker(s): {walls[count]:.1f} s ({n / walls[count]:.2f} images/s); "
            f"jobs {f['states']}, retries {f['retries']}; images analysed twice: {f['twice']} "
            f"(goal 0), never: {f['missing']}, duplicate prediction rows: "
            f"{f['duplicate_rows']}"
        )
    print(
        f"  3 workers / 1 worker time: {walls[3] / walls[1]:.2f} (on one machine of "
        f"{_cores()} cores they share it)"
    )


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--reader-process", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--url", "--data-dir", "--ids", "--start", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_process:
        reader_process(args)
        return

    from skelex_desktop.core.synth import SynthConfig, generate_dataset
    from tests.core.postgres_server import postgres_cluster

    with tempfile.TemporaryDirectory(prefix="skelex-team-bench-") as tmp:
        root = Path(tmp)
        source = root / "synth"
        generate_dataset(
            source, SynthConfig(n=args.images, seed=19, fmt="dicom", size=256, workers=1)
        )
        with postgres_cluster(root / "pg") as cluster_url:
            bench_decisions(cluster_url, root, source, args.readers, args.decisions)
            if not args.skip_workers:
                bench_workers(cluster_url, root, source)


if __name__ == "__main__":
    main()
