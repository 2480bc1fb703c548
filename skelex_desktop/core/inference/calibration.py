"""Calibration of a package's thresholds on SynthMSK, stored in its manifest.

On N seeded synthetic radiographs (half abnormal) the package's own error maps give:
- `abnormal_threshold`: the image-score cut maximising Youden's J (sensitivity + specificity - 1),
  with the image-level AUROC it achieves;
- `hotspot_threshold`: the 99.5th percentile of the error inside the anatomy of the NORMAL
  images (a per-pixel value rarely exceeded without a finding);
- pixel-level AUROC of the map for finding pixels inside bone (how well the map localises).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from skelex_desktop.core.inference.package import MANIFEST, verify_package, write_manifest
from skelex_desktop.core.progress import Progress, check
from skelex_desktop.core.stats import auroc

HOTSPOT_PERCENTILE = 99.5
CALIBRATION_SEED = 20260


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, J): `score > threshold` calls abnormal; midpoints between sorted scores."""
    s = np.sort(np.unique(scores))
    cuts = np.concatenate([[s[0] - 1e-9], (s[:-1] + s[1:]) / 2.0]) if len(s) > 1 else s
    best, best_j = float(cuts[0]), -1.0
    labels = np.asarray(labels, bool)
    for cut in cuts:
        called = scores > cut
        sens = called[labels].mean() if labels.any() else 0.0
        spec = (~called[~labels]).mean() if (~labels).any() else 0.0
        if sens + spec - 1.0 > best_j:
            best, best_j = float(cut), float(sens + spec - 1.0)
    return best, best_j


def calibrate_package(
    folder: Path, n: int, threads: int = 1, size: int = 384, progress: Progress | None = None
) -> dict[str, Any]:
    """Measure and store the thresholds of the package in `folder`; returns the new manifest.

    `model import --calibrate-synth` runs it on the package it is building, before recording
    that package's final manifest as trusted (`package_writer.import_model`); the folder's
    files are checked here, its manifest is the importer's own."""
    from skelex_desktop.core.inference.errormap import to_source
    from skelex_desktop.core.inference.hotspots import anomaly_score
    from skelex_desktop.core.inference.service import MaeRuntime
    from skelex_desktop.core.synth import GENERATOR_VERSION, generate_image

    manifest = verify_package(folder)
    runtime = MaeRuntime(manifest, threads)
    percentile = float(manifest.errormap.get("score_percentile", 99.0))
    scores, labels, normal_pixels = [], [], []
    lesion_err: list[np.ndarray] = []
    bone_err: list[np.ndarray] = []
    if progress:
        progress.set_total(n)
    for i in range(n):
        check(progress)
        abnormal = i % 2 == 1
        image = generate_image(CALIBRATION_SEED, i, size=size, abnormal=abnormal)
        emap = runtime.error_map(image.monochrome2())
        scores.append(anomaly_score(emap.model_map, emap.foreground, percentile))
        labels.append(bool(image.findings))
        if not image.findings:
            normal_pixels.append(emap.model_map[emap.foreground])
        full = to_source(emap.model_map, emap.geometry)
        bone = image.bone_mask.astype(bool)
        finding = np.zeros_like(bone)
        for f in image.findings:
            finding |= f.mask.astype(bool)
        if finding.any():
            lesion_err.append(full[finding & bone])
            bone_err.append(full[bone & ~finding])
        if progress:
            progress.advance()
    scores_a, labels_a = np.asarray(scores), np.asarray(labels)
    cut, j = youden_threshold(scores_a, labels_a)
    hotspot = float(np.percentile(np.concatenate(normal_pixels), HOTSPOT_PERCENTILE))
    pix_scores = np.concatenate(lesion_err + bone_err) if lesion_err else np.zeros(0)
    pix_labels = np.concatenate(
        [
            np.ones(sum(len(a) for a in lesion_err), bool),
            np.zeros(sum(len(a) for a in bone_err), bool),
        ]
    )
    data = dict(manifest.data)
    errormap = dict(data["errormap"])
    errormap.update(
        abnormal_threshold=cut,
        hotspot_threshold=hotspot,
        calibration={
            "data": f"SynthMSK (generator version {GENERATOR_VERSION}) seed {CALIBRATION_SEED}, "
            f"{n} images of {size} px, "
            f"{int(labels_a.sum())} with findings",
            "image_auroc": auroc(scores_a, labels_a),
            "youden_j": j,
            "sensitivity": float((scores_a[labels_a] > cut).mean()) if labels_a.any() else None,
            "specificity": float((scores_a[~labels_a] <= cut).mean())
            if (~labels_a).any()
            else None,
            "hotspot_threshold": f"percentile {HOTSPOT_PERCENTILE} of normal-image error "
            "inside the anatomy",
            "finding_pixel_auroc_inside_bone": auroc(pix_scores, pix_labels)
            if len(pix_scores)
            else None,
        },
    )
    data["errormap"] = errormap
    write_manifest(folder, data)
    assert (folder / MANIFEST).is_file()
    return data
