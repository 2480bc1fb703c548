"""Analysis on several machines (issue #19): `analyze --queue` and `skelex-desktop worker`
processes on a real PostgreSQL server, one of them killed mid-job.

The workers connect as a reader (a LOGIN role of the team), each with its own data dir as on
its own machine. The test holds the advisory lock a worker takes on the image it analyses, so
the worker that takes the first job is caught inside it (its job 'doing'); that process is
found by its application name in pg_stat_activity and SIGKILLed. Its job must come back
(procrastinate's stalled-job recovery, by a live worker) and every image must end analysed
once: one prediction row per image, task and model version, one "analysed" line per image in
the workers' logs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from skelex_desktop.cli import main
from skelex_desktop.core.analysis.queue import IMAGE_LOCK, conninfo
from skelex_desktop.core.db.models import Image, Prediction
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.postgres_server import find_pg_bin, postgres_cluster
from tests.core.test_embeddings import import_synthetic

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server not installed")

IMAGES = 12
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with (
        tempfile.TemporaryDirectory(prefix="skelex-pg-") as tmp,
        postgres_cluster(Path(tmp) / "pg") as url,
    ):
        yield url


def _url(cluster_url: str, user: str, database: str) -> str:
    parsed = make_url(cluster_url).set(username=user, database=database)
    return parsed.render_as_string(hide_password=False)


def _cli(url: str, data_dir: Path, *args: str) -> int:
    return main(["--db", url, "--data-dir", str(data_dir), *args])


def _worker(url: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "skelex_desktop", "--db", url, "--data-dir", str(data_dir)]
    command += ["worker", "--heartbeat", "1", "--stalled-after", "3"]
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def _wait_for(what: str, check, timeout: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _queue_status(url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert _cli(url, data_dir, "queue", "status", "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_three_workers_one_killed_analyse_every_image_once(
    cluster_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = "workers"
    engine = create_engine(cluster_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    engine.dispose()
    superuser = _url(cluster_url, "skelex", database)
    admin, reader = _url(cluster_url, "ann", database), _url(cluster_url, "rita", database)
    assert _cli(superuser, tmp_path / "su", "team", "init") == 0
    assert _cli(superuser, tmp_path / "su", "team", "add-user", "ann", "--role", "admin") == 0
    assert _cli(admin, tmp_path / "ann", "team", "add-user", "rita", "--role", "reader") == 0

    # the queue must be created by an admin first; a reader cannot
    assert _cli(admin, tmp_path / "ann", "analyze", "--queue", "--all") == 1
    assert "has no analysis queue yet" in capsys.readouterr().err
    assert _cli(reader, tmp_path / "rita", "queue", "init") == 1
    assert "run `queue init` as an admin" in capsys.readouterr().err
    assert _cli(admin, tmp_path / "ann", "queue", "init") == 0
    assert "analysis queue created" in capsys.readouterr().out
    assert _cli(admin, tmp_path / "ann", "queue", "init", "--json") == 0  # again: no change
    assert json.loads(capsys.readouterr().out) == {"created": False}

    ws = open_workspace(Settings(data_dir=tmp_path / "ann", db_url=admin))
    import_synthetic(ws.db, tmp_path / "ann", tmp_path / "shared", n=IMAGES, seed=19)
    with ws.db.read() as session:
        ids = list(session.scalars(select(Image.id).order_by(Image.id)))
    ws.close()
    assert len(ids) == IMAGES
    # the admin analyses one image here: that registers the package's model versions, which a
    # reader's role may insert but not activate (docs/TEAM.md, 'Analysis workers')
    assert _cli(admin, tmp_path / "ann", "analyze", str(ids[-1])) == 0
    capsys.readouterr()
    assert _cli(admin, tmp_path / "ann", "analyze", "--queue", "--all", "--json") == 0
    assert json.loads(capsys.readouterr().out)["enqueued"] == ids
    assert _cli(admin, tmp_path / "ann", "analyze", "--queue", str(ids[0])) == 0
    assert "queued 0 analysis job(s) for skelex-demo; 1 image(s) already queued or running" in (
        capsys.readouterr().out
    )
    assert _queue_status(admin, tmp_path / "ann", capsys)["todo"] == IMAGES

    victim_image = ids[0]  # the first job any worker takes
    holder = psycopg.connect(conninfo(superuser), autocommit=True)  # sees every session
    holder.execute("SELECT pg_advisory_lock(%s, %s)", (IMAGE_LOCK, victim_image))
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [_worker(reader, tmp_path / f"machine{i}", logs[i]) for i in range(3)]
    try:

        def caught() -> int | None:
            row = holder.execute(
                "SELECT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND application_name LIKE 'skelex-desktop worker %' AND query LIKE "
                "'%pg_advisory_lock%'"
            ).fetchone()
            return int(row[0].rsplit(":", 1)[1]) if row else None

        victim_pid = _wait_for("a worker inside the first job", caught)
        victim = next(w for w in workers if w.pid == victim_pid)
        os.kill(victim_pid, signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", (IMAGE_LOCK, victim_image))

        _wait_for(
            "every job done",
            lambda: _queue_status(admin, tmp_path / "ann", capsys)["succeeded"] == IMAGES,
        )
        status = _queue_status(admin, tmp_path / "ann", capsys)
        assert (status["todo"], status["doing"], status["failed"]) == (0, 0, 0)
        assert status["workers"] >= 2
        survivors = [w for w in workers if w is not victim]
        for worker in survivors:  # SIGTERM: a clean stop
            worker.send_signal(signal.SIGTERM)
        for worker in survivors:
            assert worker.wait(30) == 0
        # they signed off; the killed one's row stays until a worker starts and prunes it
        assert holder.execute("SELECT count(*) FROM procrastinate_workers").fetchone() == (1,)
    finally:
        holder.close()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for log in logs:  # shown by pytest when the test fails
            print(f"--- {log.name}\n{log.read_text()}")

    texts = {w.pid: log.read_text() for w, log in zip(workers, logs, strict=True)}
    victim_log = texts.pop(victim_pid)
    assert f"image {victim_image} analysed" not in victim_log
    survivor_logs = "".join(texts.values())
    assert "its worker stopped answering; put back in the queue" in survivor_logs
    for text_ in texts.values():
        assert "worker stopped:" in text_.splitlines()[-1]
    analysed = Counter(
        int(line.split("image ")[1].split()[0])
        for log_text in (victim_log, survivor_logs)
        for line in log_text.splitlines()
        if " analysed in " in line
    )
    assert analysed == Counter(dict.fromkeys(ids, 1))  # each image analysed by one worker, once

    with psycopg.connect(conninfo(admin)) as conn:
        attempts = dict(
            conn.execute(
                "SELECT (args->>'image_id')::int, attempts FROM procrastinate_jobs "
                "WHERE status = 'succeeded'"
            ).fetchall()
        )
    # procrastinate counts a job's runs: the killed one and its retry; one for the others
    assert attempts == {i: 2 if i == victim_image else 1 for i in ids}

    ws = open_workspace(Settings(data_dir=tmp_path / "ann", db_url=admin))
    with ws.db.read() as session:
        rows = session.execute(
            select(
                Prediction.image_id, Prediction.task_id, Prediction.model_version_id, func.count()
            ).group_by(Prediction.image_id, Prediction.task_id, Prediction.model_version_id)
        ).all()
        statuses = set(session.scalars(select(Image.status)))
    ws.close()
    assert rows and {count for *_key, count in rows} == {1}
    assert {image_id for image_id, *_rest in rows} == set(ids)
    assert statuses == {"analysed"}

    capsys.readouterr()
    assert _cli(admin, tmp_path / "ann", "analyze", "--queue", "--all") == 0
    assert f"queued 0 analysis job(s) for skelex-demo; {IMAGES} image(s) already analysed" in (
        capsys.readouterr().out
    )


def test_workers_need_the_shared_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["worker", "--once"], ["analyze", "--queue", "--all"], ["queue", "status"]):
        assert main(["--data-dir", str(tmp_path), *argv]) == 1
        assert "analysis workers need the shared PostgreSQL database" in capsys.readouterr().err
