"""The managed store: `copy=True` imports copy files to `data_dir/store/<hash[:2]>/<hash><ext>`."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

STORE_DIR = "store"


def store_path(data_dir: Path, content_hash: str, source: Path) -> Path:
    """Content-addressed destination of `source`; its suffix is kept for the viewer."""
    suffix = source.suffix.lower() if len(source.suffix) <= 6 else ""
    return data_dir / STORE_DIR / content_hash[:2] / f"{content_hash}{suffix}"


def copy_into_store(data_dir: Path, content_hash: str, source: Path) -> Path:
    """Copy `source` into the store atomically (temporary file, then rename); idempotent."""
    dest = store_path(data_dir, content_hash, source)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
