"""Kill -9 trials: real processes killed at seeded random moments, then checked.

A trial starts `python -m skelex_desktop --data-dir D ...` (or another module) in its own
session, kills it with SIGKILL after a delay drawn from a seeded generator, and returns what
the checks need: whether the process had finished by itself, its output so far, and the
processes of its session still alive a few seconds after the kill (orphans: a forkserver, a
decoding worker). The database checks (`PRAGMA integrity_check`, `foreign_key_check`) open the
file with plain sqlite3, the way the next start of the application would find it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ORPHAN_WAIT_S = 10.0  # how long the children of a killed process may take to go


@dataclass
class Outcome:
    """What happened to one killed (or finished) process."""

    delay_s: float
    finished: bool  # it exited by itself before the kill
    returncode: int | None
    stdout: str
    stderr: str
    children: int = 0  # processes it had started that were alive when it was killed
    orphans: list[str] = field(default_factory=list)  # "pid command" still alive after the wait


def session_processes(session_id: int) -> dict[int, str]:
    """Live (not zombie) processes of a session: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            found[int(entry.name)] = command.strip()
    return found


def run_and_kill(
    argv: list[str], delay_s: float, out_dir: Path, env: dict[str, str] | None = None
) -> Outcome:
    """Start `argv` in a new session, SIGKILL it after `delay_s` unless it ended, then wait up
    to ORPHAN_WAIT_S for the rest of its session to go; whatever is left is reported and
    killed so that no trial leaks processes into the next."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = out_dir / "stdout.txt", out_dir / "stderr.txt"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its session id is its pid: children keep it
        )
        try:
            returncode: int | None = process.wait(timeout=delay_s)
            finished, children = True, 0
        except subprocess.TimeoutExpired:
            children = len(session_processes(process.pid)) - 1  # its own descendants
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            returncode, finished = None, False
    deadline = time.monotonic() + ORPHAN_WAIT_S
    left = session_processes(process.pid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = session_processes(process.pid)
    for pid in left:  # clean up after a failed check
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return Outcome(
        delay_s=delay_s,
        finished=finished,
        returncode=returncode,
        stdout=stdout_path.read_text(errors="replace"),
        stderr=stderr_path.read_text(errors="replace"),
        children=children,
        orphans=[f"{pid} {command[:120]}" for pid, command in left.items()],
    )


def timed_run(argv: list[str], out_dir: Path, timeout_s: float = 120.0) -> tuple[float, Outcome]:
    """Run `argv` to its end (a control run): its duration and outcome."""
    start = time.monotonic()
    outcome = run_and_kill(argv, timeout_s, out_dir)
    assert outcome.finished, f"the control run did not finish in {timeout_s} s"
    assert outcome.returncode == 0, outcome.stderr
    return time.monotonic() - start, outcome


def app(data_dir: Path, *args: str) -> list[str]:
    """The command line of `skelex-desktop --data-dir DATA_DIR ARGS`."""
    return [sys.executable, "-m", "skelex_desktop", "--data-dir", str(data_dir), *args]


def integrity_problems(db_file: Path) -> list[str]:
    """What `PRAGMA integrity_check` and `foreign_key_check` report (empty: sound)."""
    connection = sqlite3.connect(db_file)
    try:
        problems = [
            row[0] for row in connection.execute("PRAGMA integrity_check") if row[0] != "ok"
        ]
        problems += [
            f"foreign key: {row}" for row in connection.execute("PRAGMA foreign_key_check")
        ]
    finally:
        connection.close()
    return problems


def query(db_file: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(db_file)
    try:
        return list(connection.execute(sql))
    finally:
        connection.close()
