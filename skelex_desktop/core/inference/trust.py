"""Trusted model packages: a package is identified by the sha256 of its whole manifest.

The manifest lists the sha256 of every other file of the package, so the digest of
`manifest.json` identifies all of it: thresholds, heads and their metrics, and (through the
file hashes) every graph. The application loads a package only when it knows that digest:

- a bundled package's digest as shipped is part of the code (`BUNDLED_MANIFESTS`; a test
  checks it against `models/<name>/manifest.json`);
- a package the application writes itself (`model import`, `finetune`, `model calibrate`) is
  recorded in the data dir's `trusted_packages.json` before the manifest is put in place;
- any other manifest (edited by hand, copied in, written by a version that kept no record)
  is refused until the user re-imports it or trusts it explicitly (`model trust NAME`,
  which leaves an audit event; `Registry.trust`).

A record of a package also keeps a compact outline of its manifest (each value's JSON when
short, else a short digest, by path), so a refusal can say what differs from the manifest the
application last wrote under that name. This protects against edited, copied or swapped
packages, not against someone who can also write the application's own data dir.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelex_desktop import __version__
from skelex_desktop.core.inference.package import MANIFEST, PackageError, sha256_bytes

TRUST_FILE = "trusted_packages.json"
STORE_FORMAT = "skelex-trusted-packages"
STORE_VERSION = 1

BUNDLED_MANIFESTS: dict[str, str] = {
    # package name -> sha256 of models/<name>/manifest.json as shipped. A rebuilt demo package
    # (scripts/pretrain_demo.sh, scripts/train_demo_heads.py) changes it: put the new digest
    # here (tests/core/test_trust.py fails and prints it until then).
    "skelex-demo": "cd79aebbe359d23d0cc3de3db2caeabd87611421b199d5d61cc2a41247f09f14",
}

BUNDLED = "bundled"
IMPORTED = "imported"
CALIBRATED = "calibrated"
FINE_TUNED = "fine-tuned"
TRUSTED = "trusted"

OUTLINE_DEPTH = 8
OUTLINE_INLINE = 24  # longer values are outlined by a short digest
SHOWN_DIFFERENCES = 4
_RETRIES = 3

_lock = threading.Lock()


class UntrustedPackage(PackageError):
    """A package whose manifest digest the application neither ships nor recorded."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def outline(data: Any) -> dict[str, str]:
    """Path ("errormap/abnormal_threshold") -> the value's canonical JSON when at most
    OUTLINE_INLINE characters, else "#" + 12 hex digits of its sha256; objects are walked
    down to OUTLINE_DEPTH levels, lists are values."""
    out: dict[str, str] = {}

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value and len(path) < OUTLINE_DEPTH:
            for key, item in value.items():
                walk(item, (*path, str(key)))
            return
        text = _canonical(value)
        if len(text) > OUTLINE_INLINE:
            text = "#" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        out["/".join(path)] = text

    walk(data, ())
    return out


def differences(reference: dict[str, str], current: dict[str, str]) -> list[str]:
    """What differs between two outlines, one phrase per path, in the current manifest's
    order (then what it lacks): "errormap/abnormal_threshold 0.0166 -> 0.0266",
    "files/x.onnx/sha256 changed", "heads added", "parity removed"."""
    found = []
    for path, value in current.items():
        before = reference.get(path)
        if before is None:
            found.append(f"{path} added")
        elif before != value:
            hashed = before.startswith("#") or value.startswith("#")
            found.append(f"{path} changed" if hashed else f"{path} {before} -> {value}")
    found += [f"{path} removed" for path in reference if path not in current]
    return found


def describe_differences(found: list[str]) -> str:
    shown = "; ".join(found[:SHOWN_DIFFERENCES])
    more = len(found) - SHOWN_DIFFERENCES
    return shown + (f" (and {more} more)" if more > 0 else "")


@dataclass(frozen=True)
class TrustRecord:
    """Why a manifest digest is trusted: shipped, written by the app, or trusted by a user."""

    sha256: str
    name: str
    how: str
    date: str = ""
    by: str = ""
    outline: dict[str, str] | None = field(default=None, compare=False)

    def describe(self) -> str:
        """ "bundled", "imported 2026-05-01", "trusted by dr.x 2026-05-01"."""
        by = f" by {self.by}" if self.how == TRUSTED and self.by else ""
        return f"{self.how}{by} {self.date[:10]}".strip()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sha256": self.sha256,
            "name": self.name,
            "how": self.how,
            "date": self.date,
            "by": self.by,
        }
        if self.outline is not None:
            data["outline"] = self.outline
        return data

    @classmethod
    def from_json(cls, data: Any) -> TrustRecord:
        if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
            raise ValueError(f"not a trust record: {data!r:.80}")
        raw = data.get("outline")
        return cls(
            data["sha256"],
            str(data.get("name", "")),
            str(data.get("how", "")),
            str(data.get("date", "")),
            str(data.get("by", "")),
            {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else None,
        )


def bundled_record(sha256: str) -> TrustRecord | None:
    """The record of a digest the application ships (BUNDLED_MANIFESTS), or None."""
    for name, known in BUNDLED_MANIFESTS.items():
        if known == sha256:
            return TrustRecord(sha256, name, BUNDLED)
    return None


class TrustStore:
    """The digests of the manifests the application wrote or a user trusted, in one JSON file
    (`data_dir/trusted_packages.json`), replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> TrustStore:
        return cls(Path(data_dir) / TRUST_FILE)

    def records(self) -> list[TrustRecord]:
        """The recorded manifests, oldest first; PackageError when the file is unreadable."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PackageError(f"cannot read {self.path}: {exc}") from exc
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != STORE_FORMAT:
                raise ValueError("not a SKELEX trusted-packages file")
            return [TrustRecord.from_json(item) for item in data.get("packages") or []]
        except (ValueError, UnicodeDecodeError) as exc:
            raise PackageError(
                f"{self.path} is damaged ({exc}); move it away, then re-import your packages "
                "or trust them again with `skelex-desktop model trust NAME`"
            ) from exc

    def lookup(self, sha256: str) -> TrustRecord | None:
        """Why the manifest with this digest is trusted; None when it is not."""
        shipped = bundled_record(sha256)
        if shipped is not None:
            return shipped
        return next((r for r in self.records() if r.sha256 == sha256), None)

    def latest(self, name: str) -> TrustRecord | None:
        """The last manifest recorded under package name `name` (it keeps its outline)."""
        return next((r for r in reversed(self.records()) if r.name == name), None)

    def record(self, raw: bytes, how: str, by: str = "") -> TrustRecord:
        """Trust the manifest whose exact bytes are `raw` (as `how`, by `by`).

        The file is rewritten atomically (temporary file, then rename); a record another
        process wrote meanwhile is kept (the write is checked and retried). Only the newest
        record of a name keeps its outline, so the file grows by a line per manifest.
        """
        data = json.loads(raw)
        name = str(data.get("name", "")) if isinstance(data, dict) else ""
        sha = sha256_bytes(raw)
        by = by or f"skelex-desktop {__version__}"
        date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        new = TrustRecord(sha, name, how, date, by, outline(data))
        with _lock:
            for _ in range(_RETRIES):
                records = self.records()
                existing = next((r for r in records if r.sha256 == sha), None)
                if existing is not None:
                    return existing
                kept = [
                    TrustRecord(r.sha256, r.name, r.how, r.date, r.by) if r.name == name else r
                    for r in records
                ]
                self._write([*kept, new])
                if any(r.sha256 == sha for r in self.records()):
                    return new
        raise PackageError(f"could not record {name} in {self.path}: it keeps changing")

    def recorder(self, how: str, by: str = "") -> Callable[[bytes], None]:
        """A `write_manifest` hook recording the new manifest before it replaces the old."""

        def record(raw: bytes) -> None:
            self.record(raw, how, by)

        return record

    def record_file(self, folder: Path, how: str, by: str = "") -> TrustRecord:
        """Trust the manifest now in `folder` (a package the application just wrote)."""
        return self.record((Path(folder) / MANIFEST).read_bytes(), how, by)

    def _write(self, records: list[TrustRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "format": STORE_FORMAT,
            "format_version": STORE_VERSION,
            "packages": [r.to_json() for r in records],
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
