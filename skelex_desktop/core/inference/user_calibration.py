"""Calibration of a package's thresholds on the user's own NORMAL studies (`model calibrate`).

Every readable image of the given files and folders (whatever the importer's discovery
accepts: DICOM, DICOMDIR, PNG, JPEG, TIFF) is decoded by the ingest pipeline, as the app reads
it, and mapped by the package's own runtime. From these normal images:

- `hotspot_threshold`: the 99.5th percentile of the error inside the anatomy (the rule of the
  SynthMSK calibration, `calibration.py`);
- `abnormal_threshold`: the cut keeping `specificity` of the images' anomaly scores at or below
  it (no abnormal images are given, so a fixed specificity replaces Youden's J; sensitivity is
  not measured);
- optionally (`structure_table`) an `ErrorNormaliser` fitted on these maps and declared as
  `errormap.normalisation`; the thresholds are then taken on the normalised maps, as the
  runtime will produce them. Without it, a previously declared table is removed.

A user package is updated in place (atomic manifest write); a bundled one is read-only and is
calibrated as a copy in the user's models folder (`new_name`), built in a hidden folder and
renamed in at the end. Nothing is written unless every step succeeded. Only a trusted package
is calibrated (`Registry.manifest`), and the new manifest's digest is recorded in the data dir's
trust store (`trust.py`) before it is put in place, so the result loads without a manual step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skelex_desktop.core.inference.calibration import HOTSPOT_PERCENTILE
from skelex_desktop.core.inference.hotspots import SCORE_PERCENTILE, anomaly_score
from skelex_desktop.core.inference.normalisation import (
    NORMALISATION_KEY,
    declared_normaliser,
    fit_normaliser,
)
from skelex_desktop.core.inference.package import (
    MANIFEST,
    Manifest,
    PackageError,
    check_package_name,
    read_manifest,
    verify_package,
    write_manifest,
)
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.inference.reliability import CARRIED, carried_measures
from skelex_desktop.core.inference.trust import CALIBRATED, TrustStore
from skelex_desktop.core.progress import Progress, check

if TYPE_CHECKING:  # the functions that build a runtime import it where they do
    from skelex_desktop.core.inference.service import MaeRuntime

MIN_IMAGES = 20
"""Fewest usable normal images accepted: from 1 / (1 - 0.95) = 20 images on, the abnormal
threshold at the default specificity lies below the highest normal score (one odd study does
not set it), and the pooled anatomy pixels give a stable 99.5th percentile."""

DEFAULT_SPECIFICITY = 0.95
SOURCE = "user normal studies"


@dataclass(frozen=True)
class SkippedFile:
    """A path that gave no image, with the reason."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class CalibrationRefused(ValueError):
    """The calibration cannot be done as asked (nothing was written); the message says why."""


class NotEnoughImages(CalibrationRefused):
    """Fewer usable normal images than `MIN_IMAGES`; `skipped` lists the paths that gave none."""

    def __init__(self, message: str, images: int, skipped: list[SkippedFile]) -> None:
        super().__init__(message)
        self.images = images
        self.skipped = skipped


class ReadOnlyPackage(CalibrationRefused):
    """A bundled package, which is never modified: calibrate a copy (`new_name`)."""


@dataclass
class NormalMaps:
    """The plain error maps of the usable normal images (model space) and what was skipped."""

    errors: list[np.ndarray] = field(default_factory=list)
    foregrounds: list[np.ndarray] = field(default_factory=list)
    grays: list[np.ndarray] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


@dataclass
class UserCalibration:
    """What `calibrate_on_normal_studies` did."""

    name: str
    folder: Path
    base: str
    copied: bool
    images: int
    files: list[dict[str, Any]]
    skipped: list[SkippedFile]
    specificity: float
    before: dict[str, Any]
    after: dict[str, Any]
    notes: list[str]
    manifest: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": str(self.folder),
            "calibrated_from": self.base,
            "copied": self.copied,
            "images": self.images,
            "files": self.files,
            "skipped": [s.to_json() for s in self.skipped],
            "specificity": self.specificity,
            "before": self.before,
            "after": self.after,
            "notes": self.notes,
            "calibration": self.manifest["errormap"]["calibration"],
        }


def file_images(data: bytes, path: Path) -> Iterator[np.ndarray]:
    """The pixels of every frame of one file's bytes, decoded by the ingest pipeline;
    IngestError (failed or skipped) says why not."""
    from skelex_desktop.core.ingest.dicom_source import decode_frames, parse_dicom
    from skelex_desktop.core.ingest.pixels import classify
    from skelex_desktop.core.ingest.raster_source import decode_raster

    kind = classify(data, path)
    if kind != "dicom":
        yield decode_raster(data, kind).model_pixels
        return
    for _, frame in decode_frames(parse_dicom(data, path)):
        yield frame.model_pixels


def normal_error_maps(
    runtime: MaeRuntime,
    paths: Sequence[Path],
    keep_gray: bool = False,
    progress: Progress | None = None,
) -> NormalMaps:
    """Discover `paths`, decode every image and map it with `runtime` (a `MaeRuntime`).

    Unreadable files, non-images and files whose content was already used are listed in
    `skipped` with the reason; `keep_gray` also keeps each model input (8-bit, for a structure
    table). Raises `Cancelled` when `progress` asks to stop.
    """
    from skelex_desktop.core.inference.preprocess import to_model_u8
    from skelex_desktop.core.ingest.discover import discover
    from skelex_desktop.core.ingest.limits import failure
    from skelex_desktop.core.ingest.pixels import read_file
    from skelex_desktop.core.progress import Cancelled

    out = NormalMaps()
    if progress:
        progress.set_status("finding files")
    found = discover([Path(p) for p in paths], progress)
    out.skipped.extend(SkippedFile(r.path, r.reason) for r in found.results)
    if progress:
        progress.set_total(len(found.tasks))
        progress.set_status(f"mapping the images of {len(found.tasks)} file(s)")
    seen: dict[str, str] = {}
    prep = runtime.manifest.preprocessing
    for task in found.tasks:
        check(progress)
        path = Path(task.path)
        maps: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        reason = ""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                data = read_file(path)
                digest = hashlib.sha256(data).hexdigest()
                if digest in seen:
                    reason = f"same content as {seen[digest]} (used once)"
                else:
                    for pixels in file_images(data, path):
                        check(progress)
                        emap = runtime.error_map(pixels)
                        gray = to_model_u8(pixels, prep)[0][..., 0].copy() if keep_gray else None
                        maps.append((emap.model_map, emap.foreground, gray))
            except (PackageError, Cancelled):
                raise
            except BaseException as exc:  # noqa: BLE001 - one bad file must not stop the run
                reason = failure(exc)[1]
        if not reason and not maps:
            reason = "no image in the file"
        if reason:
            out.skipped.append(SkippedFile(task.path, reason))
        else:
            seen[digest] = task.path
            for error, foreground, gray in maps:
                out.errors.append(error)
                out.foregrounds.append(foreground)
                if gray is not None:
                    out.grays.append(gray)
            out.files.append({"path": task.path, "sha256": digest, "images": len(maps)})
        if progress:
            progress.advance(current=path.name)
    return out


def specificity_cut(scores: np.ndarray, specificity: float) -> float:
    """The score cut that keeps at least `specificity` of `scores` at or below it: halfway
    between the k-th and (k+1)-th smallest score, k = ceil(specificity x n) (the highest score
    when k = n), so `score > cut` calls as few of these images abnormal as the rate allows."""
    ordered = np.sort(np.asarray(scores, np.float64))
    k = max(1, math.ceil(specificity * len(ordered) - 1e-9))
    if k >= len(ordered):
        return float(ordered[-1])
    return float((ordered[k - 1] + ordered[k]) / 2.0)


def normal_thresholds(
    maps: Sequence[np.ndarray],
    foregrounds: Sequence[np.ndarray],
    score_percentile: float,
    specificity: float,
) -> tuple[float, float, np.ndarray]:
    """(abnormal threshold, hotspot threshold, image scores) of NORMAL images' maps."""
    scores = np.asarray(
        [anomaly_score(m, f, score_percentile) for m, f in zip(maps, foregrounds, strict=True)]
    )
    pixels = np.concatenate([m[f] for m, f in zip(maps, foregrounds, strict=True)])
    if pixels.size == 0:
        pixels = np.concatenate([m.ravel() for m in maps])
    hotspot = float(np.percentile(pixels, HOTSPOT_PERCENTILE))
    return specificity_cut(scores, specificity), hotspot, scores


def _user_root(registry: Registry) -> Path:
    for root, origin in registry.roots:
        if origin == "user":
            return Path(root)
    raise PackageError("no user models folder is configured")


def _inside(root: Path, name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise PackageError(f"{root.name}: manifest lists a file outside the package: {name!r}")
    return root / rel


def _state(errormap: dict[str, Any]) -> dict[str, Any]:
    return {
        "abnormal_threshold": errormap.get("abnormal_threshold"),
        "hotspot_threshold": errormap.get("hotspot_threshold"),
        "structure_table": declared_normaliser(errormap) is not None,
    }


def _write_in_place(
    folder: Path, manifest: Manifest, data: dict[str, Any], trust: TrustStore | None
) -> Manifest:
    """Replace the manifest of `folder` by `data` and verify the package; the new manifest is
    recorded in `trust` (as calibrated by the application) before it replaces the old one."""
    if read_manifest(folder).sha256 != manifest.sha256:
        raise PackageError(
            f"{folder.name}: the manifest changed while calibrating; nothing was written, "
            "run the calibration again"
        )
    before = (folder / MANIFEST).read_bytes()
    try:
        write_manifest(folder, data, trust.recorder(CALIBRATED) if trust else None)
        return verify_package(folder)
    except BaseException:
        (folder / (MANIFEST + ".tmp")).unlink(missing_ok=True)
        if (folder / MANIFEST).read_bytes() != before:  # put the old manifest back, atomically
            tmp = folder / (MANIFEST + ".restore")
            tmp.write_bytes(before)
            os.replace(tmp, folder / MANIFEST)
        raise


def _write_copy(
    source: Manifest, target: Path, data: dict[str, Any], trust: TrustStore | None
) -> Manifest:
    """Copy the package's files into a hidden folder beside `target`, write the new manifest
    (recorded in `trust` as calibrated), verify, and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        build.chmod(0o755)  # mkdtemp makes it private; a package is readable like any folder
        for name in source.files:
            dest = _inside(build, name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_inside(source.folder, name), dest)
        write_manifest(build, data, trust.recorder(CALIBRATED) if trust else None)
        verify_package(build)
        if target.exists():
            raise FileExistsError(f"a model package named '{target.name}' appeared meanwhile")
        os.rename(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return read_manifest(target)


def calibrate_on_normal_studies(
    registry: Registry,
    name: str,
    studies: Sequence[Path],
    specificity: float = DEFAULT_SPECIFICITY,
    structure_table: bool = False,
    new_name: str | None = None,
    threads: int = 1,
    progress: Progress | None = None,
) -> UserCalibration:
    """Calibrate package `name` of `registry` (a `Registry`) on the NORMAL images of `studies`.

    Without `new_name` a user package is updated in place and a bundled one is refused
    (`ReadOnlyPackage`); with it the package is copied into the user models folder under that
    name and the copy is calibrated. `NotEnoughImages` when fewer than `MIN_IMAGES` images are
    usable; the manifest is untouched on any failure or cancellation.
    """
    from skelex_desktop import __version__
    from skelex_desktop.core.inference.service import MaeRuntime

    if not 0.0 < specificity < 1.0:
        raise CalibrationRefused(f"specificity must be between 0 and 1, not {specificity}")
    folder, origin = registry.folder(name)
    target = folder
    if new_name is not None:
        check_package_name(new_name)
        target = _user_root(registry) / new_name
        if new_name in registry.names() or os.path.lexists(target):
            raise FileExistsError(
                f"a model package named '{new_name}' already exists; choose another --as name"
            )
    elif origin != "user":
        raise ReadOnlyPackage(
            f"'{name}' is a {origin} package and is never modified; pass --as NEWNAME to "
            f"calibrate a copy in {_user_root(registry)}"
        )
    manifest = registry.manifest(name)  # trusted and verified, or refused
    runtime = MaeRuntime(manifest, threads)
    runtime.normaliser = None  # plain maps; a table, when asked for, is fitted on them
    maps = normal_error_maps(runtime, studies, structure_table, progress)
    n = len(maps.errors)
    if n < MIN_IMAGES:
        what = "no usable image" if n == 0 else f"only {n} usable image(s)"
        raise NotEnoughImages(
            f"{what} in the given studies ({len(maps.skipped)} path(s) skipped); calibration "
            f"needs at least {MIN_IMAGES} normal images; the package was not changed",
            n,
            maps.skipped,
        )
    check(progress)
    if progress:
        progress.set_status("computing the thresholds")
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    errormap = dict(manifest.errormap)  # never mutate the (possibly cached) manifest
    before = _state(errormap)
    normaliser = None
    values = maps.errors
    if structure_table:
        normaliser = fit_normaliser(
            maps.errors, maps.grays, maps.foregrounds, data=f"{SOURCE}: {n} images, {date}"
        )
        values = [normaliser.apply(e, g) for e, g in zip(maps.errors, maps.grays, strict=True)]
    percentile = float(errormap.get("score_percentile", SCORE_PERCENTILE))
    cut, hotspot, scores = normal_thresholds(values, maps.foregrounds, percentile, specificity)
    measured = float((scores <= cut).mean())
    notes: list[str] = []
    if math.ceil(specificity * n - 1e-9) >= n:
        notes.append(
            f"{n} images cannot resolve a specificity of {specificity:g}: the abnormal "
            f"threshold is the highest score among them; use at least "
            f"{math.ceil(1.0 / (1.0 - specificity) - 1e-9)} images"
        )
    errormap.pop(NORMALISATION_KEY, None)
    if before["structure_table"] and normaliser is None:
        notes.append(
            "the structure table the package declared was removed (pass --structure-table to "
            "fit one on these studies)"
        )
    if normaliser is not None:
        errormap[NORMALISATION_KEY] = normaliser.to_json()
    # Without a structure table before and after, the map itself is unchanged, and so are its
    # SynthMSK measures: they stay in the record (the viewer's caveat reads them).
    measures = carried_measures(manifest.errormap.get("calibration"))
    unchanged_map = normaliser is None and not before["structure_table"]
    carried = {CARRIED: measures} if measures and unchanged_map else {}
    errormap.update(
        abnormal_threshold=cut,
        hotspot_threshold=hotspot,
        calibration={
            "source": SOURCE,
            "date": date,
            "images": n,
            # content hashes only: folder and file names of patient studies may identify people
            "files": [{"sha256": f["sha256"], "images": f["images"]} for f in maps.files],
            "skipped_files": len(maps.skipped),
            "specificity": specificity,
            "specificity_on_these_images": measured,
            "sensitivity": None,
            "sensitivity_note": "not measurable: only normal studies were given",
            "abnormal_threshold": f"cut keeping {specificity:g} of the normal images' anomaly "
            "scores at or below it (halfway to the next score)",
            "hotspot_threshold": f"percentile {HOTSPOT_PERCENTILE} of normal-image error "
            "inside the anatomy",
            "structure_table": normaliser is not None,
            "calibrated_from": {"name": manifest.name, "package_sha256": manifest.sha256},
            **carried,
            "calibrated_with": f"skelex-desktop {__version__}",
        },
    )
    data = dict(manifest.data)
    data["errormap"] = errormap
    check(progress)
    if progress:
        progress.set_status("writing the manifest")
    if new_name is not None:
        data["name"] = new_name
        written = _write_copy(manifest, target, data, registry.trust)
    else:
        written = _write_in_place(folder, manifest, data, registry.trust)
        notes.append(
            f"the package's sha256 changed ({manifest.sha256[:12]} -> {written.sha256[:12]}): "
            "its cached error maps are recomputed; its embedding graph and preprocessing are "
            "unchanged, so its cached embeddings and the task heads trained on it still apply"
        )
    after = {**_state(errormap), "package_sha256": written.sha256}
    before["package_sha256"] = manifest.sha256
    return UserCalibration(
        written.name,
        target,
        name,
        new_name is not None,
        n,
        maps.files,
        maps.skipped,
        specificity,
        before,
        after,
        notes,
        data,
    )
