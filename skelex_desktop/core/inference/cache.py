"""Prediction cache: error maps and their summaries under `data_dir/cache/errormaps/`.

Key: sha256 of (image content hash, model package sha256, analysis parameters). Each entry is
`<key>.npy` (the full-resolution map) + `<key>.json` (hotspots, score, ...), both written to a
temporary name and renamed, the JSON last: an entry without its JSON does not exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

CACHE_VERSION = 1


def cache_key(image_hash: str, package_sha256: str, **params: Any) -> str:
    text = json.dumps(
        {"v": CACHE_VERSION, "image": image_hash, "model": package_sha256, **params},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class PredictionCache:
    """Error maps by key, stored atomically as .npy + .json."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> PredictionCache:
        return cls(Path(data_dir) / "cache" / "errormaps")

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.npy", self.folder / f"{key}.json"

    def map_path(self, key: str) -> Path:
        """Where the map of `key` is (or will be) stored."""
        return self._paths(key)[0]

    def get(self, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        npy, meta = self._paths(key)
        if not (npy.is_file() and meta.is_file()):
            return None
        try:
            summary = json.loads(meta.read_text(encoding="utf-8"))
            error_map = np.load(npy, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return error_map, summary

    def put(self, key: str, error_map: np.ndarray, summary: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        npy, meta = self._paths(key)
        _atomic_write(npy, lambda f: np.save(f, np.asarray(error_map, np.float32)))
        _atomic_write(meta, lambda f: f.write(json.dumps(summary).encode()))


def _atomic_write(target: Path, write: Callable[[BinaryIO], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
