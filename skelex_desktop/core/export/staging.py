"""Atomic export folders: everything is written into a hidden folder next to the target, which
is renamed to the target only when the export is complete and verified.

The hidden folder's name carries the writing process's id, so a later export to the same place
removes what a killed one (SIGKILL, power loss) left behind. The finished folder gets the mode a
new folder gets under the user's umask (a temporary folder is created 0700).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from skelex_desktop.core.export.options import ExportError

PREFIX = ".skelex-export-"


def check_target(out: Path) -> None:
    """Refuse a target that exists as a file, as a folder with content, or read-only; and a
    parent folder the export cannot write into."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty; choose a new folder")
    if out.is_dir() and not os.access(out, os.W_OK):
        raise ExportError(f"{out} exists and is read-only; make it writable or choose a new folder")
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(
            f"cannot write into {parent}: the folder is read-only for this user; "
            "choose an export folder elsewhere"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(out: Path) -> list[Path]:
    """Remove hidden staging folders of `out` whose writing process is gone."""
    removed = []
    for folder in out.parent.glob(f"{PREFIX}{out.name}-*"):
        parts = folder.name.removeprefix(f"{PREFIX}{out.name}-").split("-", 1)
        if folder.is_dir() and parts[0].isdigit() and not _alive(int(parts[0])):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _umask() -> int:
    """The process's umask, read where the system shows it (Linux) rather than set to 0 for a
    moment: the window exports on a worker thread while other threads write files."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)  # elsewhere: read by setting it, restored at once
    os.umask(mask)
    return mask


class Staging:
    """A temporary sibling folder of `out`; removed on any exception, renamed by `commit()`."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path: Path | None = None

    def __enter__(self) -> Staging:
        check_target(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.out)
        prefix = f"{PREFIX}{self.out.name}-{os.getpid()}-"
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.out.parent))
        return self

    def write(self, rel: str, data: bytes) -> Path:
        """Write one file at `rel` (POSIX relative path) inside the staging folder."""
        assert self.path is not None
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def commit(self) -> Path:
        """Move the finished export into place (an empty target folder is replaced)."""
        assert self.path is not None
        check_target(self.out)
        if self.out.is_dir():
            self.out.rmdir()
        self.path.chmod(0o777 & ~_umask())
        os.replace(self.path, self.out)
        self.path = None
        return self.out

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
