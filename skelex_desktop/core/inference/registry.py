"""The model registry: bundled packages (`models/`) and user packages (`data_dir/models`).

A user package shadows a bundled one of the same name. Listing reads manifests (and verifies
hashes on request); loading always verifies, so a damaged package is never half-loaded. Every
manifest the registry hands out is trusted (`trust.py`): its digest is a bundled package's as
shipped, or recorded in the data dir's trust store when the application wrote it or a user
trusted it (`Registry.trust`, audited); any other is refused with what differs and the way out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skelex_desktop.core.inference.interfaces import ServiceSettings
from skelex_desktop.core.inference.package import (
    MANIFEST,
    Manifest,
    PackageError,
    package_size,
    read_manifest,
    sha256_bytes,
    verify_file,
)
from skelex_desktop.core.inference.trust import (
    BUNDLED_MANIFESTS,
    TRUSTED,
    TrustRecord,
    TrustStore,
    UntrustedPackage,
    describe_differences,
    differences,
    outline,
)

if TYPE_CHECKING:  # the database is opened by the caller of `Registry.trust`
    from skelex_desktop.core.db.engine import Database


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
    trust: str | None = None  # why the manifest is trusted ("bundled", "imported 2026-...")

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
            "trusted": self.trust is not None,
            "trust": self.trust,
        }


class Registry:
    """Model packages found under an ordered list of roots (earlier roots win on names); only
    manifests `trust` (or the bundled digests) vouches for are handed out."""

    def __init__(self, roots: list[tuple[Path, str]], trust: TrustStore) -> None:
        self.roots = roots
        self.trust = trust

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Registry:
        from skelex_desktop.core.resources import bundled_models_dir

        data_dir = Path(settings.data_dir)
        return cls(
            [(data_dir / "models", "user"), (bundled_models_dir(), "bundled")],
            TrustStore.for_data_dir(data_dir),
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
            manifest = read_manifest(folder)
        except PackageError as exc:
            return PackageInfo(name, "", _dir_size(folder), False, origin, folder, None, str(exc))
        record: TrustRecord | None = None
        try:
            record = self.check(name, manifest)
            if verify:
                _verify_files(manifest)
        except PackageError as exc:
            return PackageInfo(
                name,
                manifest.version,
                package_size(folder, manifest),
                False,
                origin,
                folder,
                manifest.sha256,
                str(exc),
                record.describe() if record else None,
            )
        return PackageInfo(
            name,
            manifest.version,
            package_size(folder, manifest),
            True if verify else None,
            origin,
            folder,
            manifest.sha256,
            trust=record.describe(),
        )

    def list_packages(self, verify: bool = True) -> list[PackageInfo]:
        return [self.info(name, verify) for name in self.names()]

    def verify(self, name: str) -> PackageInfo:
        """PackageInfo of a trusted package whose every file passed its check; PackageError
        (UntrustedPackage for an unknown manifest) if not."""
        self.manifest(name)
        return self.info(name, verify=True)

    def manifest(self, name: str) -> Manifest:
        """The trusted, verified manifest of `name` (digest known, every file checked)."""
        manifest = self.read(name)
        _verify_files(manifest)
        return manifest

    def read(self, name: str) -> Manifest:
        """The trusted manifest of `name`, its files not hashed (what decides which package a
        head applies to; loading the package verifies them)."""
        folder, _origin = self.folder(name)
        manifest = read_manifest(folder)
        self.check(name, manifest)
        return manifest

    def check(self, name: str, manifest: Manifest) -> TrustRecord:
        """Why `manifest` (of package `name`) is trusted; UntrustedPackage, saying what differs
        and the way out, when it is not."""
        record = self.trust.lookup(manifest.sha256)
        if record is None:
            raise UntrustedPackage(self._refusal(name, manifest))
        return record

    def _refusal(self, name: str, manifest: Manifest) -> str:
        _folder, origin = self.folder(name)
        head = (
            f"model package '{name}' ({origin}, {manifest.folder}): its {MANIFEST} (sha256 "
            f"{manifest.sha256[:12]}) is not one this application shipped, wrote or was told "
            "to trust"
        )
        reference = self._reference(name, manifest)
        if reference is None:
            why = (
                "; no manifest of that name was recorded (copied in by hand, or imported by "
                "a version before trust records)"
            )
        else:
            label, shape = reference
            found = differences(shape, outline(manifest.data))
            what = describe_differences(found) if found else "key order or spacing only"
            why = f"; it differs from the {label} in: {what}"
        if origin == "bundled":
            fix = "reinstall the application"
        else:
            fix = f"re-import it (`skelex-desktop model import HF_DIR --name {name} --replace`)"
        return (
            f"{head}{why}; the package is refused. To use it, {fix}, or if you trust this "
            f"manifest run `skelex-desktop model trust {name}` (recorded in the audit trail)"
        )

    def _reference(self, name: str, manifest: Manifest) -> tuple[str, dict[str, str]] | None:
        """(what, outline) of the trusted manifest a refused one is compared with: the last
        one recorded under its name, else the shipped bundled package of that name."""
        for candidate in dict.fromkeys([manifest.name, name]):
            record = self.trust.latest(candidate)
            if record is not None and record.outline is not None:
                return f"manifest {record.describe()} as '{candidate}'", record.outline
        for candidate in dict.fromkeys([name, manifest.name]):
            shipped = BUNDLED_MANIFESTS.get(candidate)
            for root, origin in self.roots:
                path = root / candidate / MANIFEST
                if origin != "bundled" or not path.is_file():
                    continue
                try:
                    raw = path.read_bytes()
                    if sha256_bytes(raw) == shipped:
                        return f"bundled '{candidate}' as shipped", outline(json.loads(raw))
                except (OSError, ValueError):
                    continue
        return None

    def trust_package(self, name: str, db: Database, who: str) -> tuple[TrustRecord, bool]:
        """Trust the current manifest of package `name` explicitly (`model trust NAME`).

        Its files must pass their sha256 check against it (a damaged package is not trusted).
        The audit event ("model.trust": who, the package's name and folder, the digest, what
        differed from the last trusted manifest) and the record in the trust store are written
        together: when the record cannot be written the event is rolled back. Returns the
        record and whether it is new (False: already trusted, nothing written).
        """
        from skelex_desktop.core.db import audit

        folder, origin = self.folder(name)
        manifest = read_manifest(folder)
        _verify_files(manifest)
        existing = self.trust.lookup(manifest.sha256)
        if existing is not None:
            return existing, False
        reference = self._reference(name, manifest)
        found = differences(reference[1], outline(manifest.data)) if reference else []
        raw = (folder / MANIFEST).read_bytes()
        if sha256_bytes(raw) != manifest.sha256:
            raise PackageError(f"{name}: the manifest changed meanwhile; run the command again")
        with db.write() as session:
            audit.record(
                session,
                who,
                "model.trust",
                "model_package",
                None,
                before={
                    "name": name,
                    "trusted": False,
                    "compared_with": reference[0] if reference else None,
                    "differences": found,
                },
                after={
                    "name": name,
                    "trusted": True,
                    "origin": origin,
                    "folder": str(folder),
                    "manifest_sha256": manifest.sha256,
                },
            )
            session.flush()
            record = self.trust.record(raw, TRUSTED, who)
        return record, True


def _verify_files(manifest: Manifest) -> None:
    for file in manifest.files:
        verify_file(manifest, file)


def _dir_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
