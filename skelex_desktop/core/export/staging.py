"""Atomic export folders: everything is written into a hidden folder next to the target, which
is renamed to the target only when the export is complete and verified."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from skelex_desktop.core.export.options import ExportError

PREFIX = ".skelex-export-"


def check_target(out: Path) -> None:
    """Refuse a target that exists as a file or as a folder with content."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty; choose a new folder")


class Staging:
    """A temporary sibling folder of `out`; removed on any exception, renamed by `commit()`."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path: Path | None = None

    def __enter__(self) -> Staging:
        check_target(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{self.out.name}-", dir=self.out.parent))
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
