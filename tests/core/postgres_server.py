"""A throw-away PostgreSQL cluster on a Unix socket, for the shared-database tests."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The bin folder of an installed PostgreSQL server (Debian layout or PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(found)
    return Path(candidates[0]).parent if candidates else None


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextmanager
def postgres_cluster(base: Path) -> Iterator[str]:
    """Start a cluster under `base`; yields an SQLAlchemy URL; stops it afterwards."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise FileNotFoundError("no PostgreSQL server installed (initdb not found)")
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
        os.chmod(base.parent, 0o755)
    data = base / "data"
    subprocess.run(
        _as_server_user([str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "skelex"]),
        check=True,
        capture_output=True,
    )
    ctl = [str(pg_bin / "pg_ctl"), "-D", str(data)]
    options = f"-k {base} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        _as_server_user([*ctl, "-o", options, "-l", str(base / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://skelex@/postgres?host={base}"
    finally:
        subprocess.run(_as_server_user([*ctl, "-m", "fast", "stop"]), capture_output=True)
