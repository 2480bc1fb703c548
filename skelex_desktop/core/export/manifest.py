"""The export manifest (manifest.json): what was exported, how, and the sha256 of every file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from skelex_desktop.core.progress import Progress, check

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: Path, progress: Progress | None = None) -> dict[str, str]:
    """Relative POSIX path -> sha256 of every file under `root` except the manifest."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p != root / MANIFEST)
    if progress is not None:
        progress.set_total(len(files))
        progress.set_status("computing checksums")
    hashes: dict[str, str] = {}
    for path in files:
        check(progress)
        rel = path.relative_to(root).as_posix()
        hashes[rel] = sha256_file(path)
        if progress is not None:
            progress.advance(current=rel)
    return hashes


def manifest_bytes(content: dict[str, Any]) -> bytes:
    return (json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n").encode()


def verify(root: Path) -> list[str]:
    """Files whose sha256 differs from the manifest, or that are missing or unlisted."""
    listed = json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"]
    actual = hash_tree(root)
    problems = [f"{p}: checksum differs" for p in listed if p in actual and actual[p] != listed[p]]
    problems += [f"{p}: missing" for p in listed if p not in actual]
    problems += [f"{p}: not in the manifest" for p in actual if p not in listed]
    return problems
