"""The model registry: bundled packages (`models/`) and user packages (`data_dir/models`).

A user package shadows a bundled one of the same name. Listing reads manifests (and verifies
hashes on request); loading always verifies, so a damaged package is never half-loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skelex_desktop.core.inference.interfaces import ServiceSettings
from skelex_desktop.core.inference.package import (
    MANIFEST,
    Manifest,
    PackageError,
    package_size,
    read_manifest,
    verify_package,
)


@dataclass(frozen=True)
class PackageInfo:
    """One row of `model list`."""

    name: str
    version: str
    size_bytes: int
    verified: bool | None
    origin: str
    path: Path
    sha256: str | None
    problem: str | None = None

    @property
    def file_count(self) -> int:
        if self.sha256 is None:
            return 0
        return len(read_manifest(self.path).files)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "size_bytes": self.size_bytes,
            "verified": self.verified,
            "origin": self.origin,
            "path": str(self.path),
            "sha256": self.sha256,
            "problem": self.problem,
        }


class Registry:
    """Model packages found under an ordered list of roots (earlier roots win on names)."""

    def __init__(self, roots: list[tuple[Path, str]]) -> None:
        self.roots = roots

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Registry:
        from skelex_desktop.core.resources import bundled_models_dir

        return cls(
            [(Path(settings.data_dir) / "models", "user"), (bundled_models_dir(), "bundled")]
        )

    def _folders(self) -> dict[str, tuple[Path, str]]:
        found: dict[str, tuple[Path, str]] = {}
        for root, origin in self.roots:
            if not root.is_dir():
                continue
            for folder in sorted(root.iterdir()):
                if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
                    continue
                found.setdefault(folder.name, (folder, origin))
        return found

    def names(self) -> list[str]:
        return sorted(self._folders())

    def folder(self, name: str) -> tuple[Path, str]:
        folders = self._folders()
        if name not in folders:
            known = ", ".join(sorted(folders)) or "none"
            raise PackageError(f"no model package named '{name}' (installed: {known})")
        return folders[name]

    def info(self, name: str, verify: bool = True) -> PackageInfo:
        folder, origin = self.folder(name)
        try:
            manifest = verify_package(folder) if verify else read_manifest(folder)
        except PackageError as exc:
            return PackageInfo(name, "", _dir_size(folder), False, origin, folder, None, str(exc))
        return PackageInfo(
            name,
            manifest.version,
            package_size(folder, manifest),
            True if verify else None,
            origin,
            folder,
            manifest.sha256,
        )

    def list_packages(self, verify: bool = True) -> list[PackageInfo]:
        return [self.info(name, verify) for name in self.names()]

    def verify(self, name: str) -> PackageInfo:
        """PackageInfo of a package whose every file passed its check; PackageError if not."""
        folder, _origin = self.folder(name)
        verify_package(folder)
        return self.info(name, verify=True)

    def manifest(self, name: str) -> Manifest:
        """The verified manifest of `name` (every file checked)."""
        folder, _origin = self.folder(name)
        return verify_package(folder)


def _dir_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
