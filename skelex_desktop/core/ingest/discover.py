"""Finding the files to import: folders walked (symlink loops and unreadable folders reported),
DICOMDIR indexes expanded into the files they reference, each file listed once."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.layout import SIDECAR_NAME
from skelex_desktop.core.ingest.records import DecodedFile, FileTask
from skelex_desktop.core.progress import Progress, check

DICOMDIR_NAME = "DICOMDIR"


@dataclass
class Discovery:
    """Files to decode, and verdicts reached without decoding (missing paths, loops, ...)."""

    tasks: list[FileTask] = field(default_factory=list)
    results: list[DecodedFile] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add_file(self, path: Path, root: Path) -> None:
        key = os.path.normcase(os.path.realpath(path))
        if key not in self._seen:
            self._seen.add(key)
            self.tasks.append(FileTask(os.path.abspath(path), os.path.abspath(root)))

    def verdict(self, path: Path, outcome: ImportOutcome, reason: str) -> None:
        self.results.append(DecodedFile(os.path.abspath(path), outcome, reason))


def dicomdir_references(path: Path) -> list[Path]:
    """The files a DICOMDIR references (ReferencedFileID, relative to its folder)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
    base = path.parent
    found: list[Path] = []
    for record in ds.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else [str(p) for p in file_id]
        found.append(base.joinpath(*parts))
    return found


def _expand_dicomdir(path: Path, found: Discovery) -> None:
    try:
        references = dicomdir_references(path)
    except Exception as exc:
        found.verdict(path, ImportOutcome.FAILED, f"unreadable DICOMDIR: {exc}")
        return
    missing = 0
    for reference in references:
        if reference.is_file():
            found.add_file(reference, path.parent)
        else:
            missing += 1
            found.verdict(reference, ImportOutcome.FAILED, f"referenced by {path} but missing")
    found.verdict(
        path,
        ImportOutcome.SKIPPED,
        f"DICOMDIR index: {len(references)} referenced files queued ({missing} missing)",
    )


# A folder holding this file is not walked: its images are not radiographs (SynthMSK writes it
# into its ground-truth masks folder, so `import DIR` of a `synth --out DIR` takes the radiographs
# only).
NOT_RADIOGRAPHS = ".skelex-not-radiographs"


def _add(path: Path, root: Path, found: Discovery) -> None:
    name = path.name
    if name.startswith(".") or name == SIDECAR_NAME:
        return
    if name.upper() == DICOMDIR_NAME:
        _expand_dicomdir(path, found)
    else:
        found.add_file(path, root)


def _walk(root: Path, found: Discovery, progress: Progress | None) -> None:
    """Depth-first walk of `root`; symlinked folders are followed unless they loop."""
    root_stat = root.stat()
    visited = {(root_stat.st_dev, root_stat.st_ino)}
    stack: list[tuple[Path, tuple[tuple[int, int], ...]]] = [
        (root, ((root_stat.st_dev, root_stat.st_ino),))
    ]
    while stack:
        check(progress)
        folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except PermissionError:
            found.verdict(folder, ImportOutcome.FAILED, "permission denied: cannot list folder")
            continue
        except OSError as exc:
            found.verdict(folder, ImportOutcome.FAILED, f"cannot list folder: {exc.strerror}")
            continue
        if any(entry.name == NOT_RADIOGRAPHS for entry in entries):
            found.verdict(
                folder,
                ImportOutcome.SKIPPED,
                f"not radiographs (the folder holds {NOT_RADIOGRAPHS}, e.g. ground-truth masks)",
            )
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            try:
                stat = os.stat(entry.path)  # follows symlinks
            except OSError as exc:
                if entry.is_symlink():
                    loop = exc.errno is not None and exc.errno == 40  # ELOOP
                    reason = "symbolic link loop" if loop else "broken symbolic link"
                    found.verdict(path, ImportOutcome.FAILED, reason)
                else:
                    found.verdict(path, ImportOutcome.FAILED, f"cannot stat: {exc.strerror}")
                continue
            if entry.is_dir():
                key = (stat.st_dev, stat.st_ino)
                if key in ancestors:
                    found.verdict(
                        path,
                        ImportOutcome.FAILED,
                        "symbolic link loop: points to a folder above it",
                    )
                elif key not in visited:
                    visited.add(key)
                    subfolders.append((path, (*ancestors, key)))
            elif entry.is_file():
                _add(path, root, found)
        stack.extend(reversed(subfolders))


def discover(paths: list[Path], progress: Progress | None = None) -> Discovery:
    """Expand the user's paths (files, folders, DICOMDIRs) into tasks and early verdicts."""
    found = Discovery()
    for raw in paths:
        path = Path(raw).expanduser()
        before = (len(found.tasks), len(found.results))
        if not os.path.lexists(path):
            found.verdict(path, ImportOutcome.FAILED, "path does not exist")
            continue
        try:
            is_dir = path.is_dir()
            exists = path.exists()
        except OSError as exc:
            found.verdict(path, ImportOutcome.FAILED, f"cannot access: {exc.strerror or exc}")
            continue
        if not exists:
            found.verdict(path, ImportOutcome.FAILED, "broken symbolic link or symbolic link loop")
        elif is_dir:
            _walk(path, found, progress)
            if (len(found.tasks), len(found.results)) == before:
                found.verdict(path, ImportOutcome.SKIPPED, "empty folder: no files found")
        elif path.name.upper() == DICOMDIR_NAME:
            _expand_dicomdir(path, found)
        else:
            found.add_file(path, path.parent)
    return found
