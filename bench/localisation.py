"""Yardstick for error maps: how well does a map localise SynthMSK findings?

On held-out SynthMSK images (seed 90210 by default; the demo model was pretrained on seed 0
and calibrated on seed 20260) rendered in memory, for the model's error map and, in the same
run, two baselines computed on the same preprocessed 8-bit model input:
- median residual |x - median15(x)|, Gaussian residual |x - gauss_sigma4(x)| (x on [0, 1]);
- optionally the normalised / low-pass variants of the model map (`--variants`), the
  structure lookup table fitted on `--fit-n` NORMAL images of another seed (`--fit-seed`);
- optionally (`--pooling`) the plain complementary map (each pass's masked error pooled, the
  default before issue #20) on the same passes;
- optionally (`--ceiling`) the map of a perfect normal-anatomy predictor: the residual against
  the image's finding-free twin (same anatomy, exposure and noise), the upper bound of any
  reconstruction-error map on this input.

Printed per map: pixel AUROC inside the bone mask (pooled, without implants, per finding
type), AUPRO up to FPR 0.3 (pooled and without implants), image-level AUROC normal vs
abnormal of the image score (99th percentile inside the app's foreground), the top-hotspot
hit rate on abnormal images and the latency of the model map. Maps are scored at the
source resolution (model-space maps resampled as the app does); definitions in
docs/LOCALISATION.md and skelex_desktop/core/inference/yardstick.py.

`--synth-version` renders the images with that SynthMSK generator version (default the
latest; 1 reproduces the figures made before generator versions existed, docs/SYNTH.md).

Usage: python bench/localisation.py [--n 200] [--model skelex-demo] [--variants] [--ceiling]
                                    [--pooling] [--synth-version V] [--json F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skelex_desktop.core.inference.errormap import (
    ErrorMap,
    declared_pooling,
    foreground_mask,
    masked_error,
    noise_for,
    to_source,
)
from skelex_desktop.core.inference.hotspots import (
    DEFAULT_Z,
    SCORE_PERCENTILE,
    anomaly_score,
    find_hotspots,
    scale_hotspots,
)
from skelex_desktop.core.inference.normalisation import (
    ErrorNormaliser,
    combine_passes,
    declared_lowpass,
    fit_normaliser,
    lowpass_masked_error,
)
from skelex_desktop.core.inference.preprocess import (
    normalise,
    resize_u8,
    to_model_u8,
    window_to_u8,
)
from skelex_desktop.core.inference.service import MaeRuntime
from skelex_desktop.core.inference.yardstick import (
    PATCH_SIZE_BINS,
    aupro,
    auroc_against,
    box_hits,
    hit_rate,
    patch_size_bin,
    patches_spanned,
)
from skelex_desktop.core.stats import auroc
from skelex_desktop.core.synth import GENERATOR_VERSION, GENERATOR_VERSIONS, generate_image
from skelex_desktop.core.synth.image import FINDING_KINDS

EVAL_SEED = 90210
FIT_SEED = 31337
NORMAL_OFFSET = 1_000_000  # normal images use other indices than abnormal ones
MEDIAN_KERNEL = 15
GAUSS_SIGMA = 4.0
LOWPASS_SIGMA = 2.0
MAX_FPR = 0.3


@dataclass
class Pieces:
    """One image through the model: 8-bit input, reconstruction passes, the error map as the
    package declares it (`emap`) and the plain masked error (`raw`)."""

    gray: np.ndarray
    x: np.ndarray
    rec: np.ndarray
    mask: np.ndarray
    emap: ErrorMap
    raw: np.ndarray
    twin: np.ndarray | None = None  # 8-bit model input of the finding-free twin (--ceiling)
    expected: np.ndarray | None = None  # the same twin rendered without quantum noise


MapFn = Callable[[Pieces], np.ndarray | None]  # None: this map has nothing for the image


def model_pieces(runtime: MaeRuntime, pixels: np.ndarray) -> Pieces:
    """The steps of `MaeRuntime.error_map` (complementary mode, unshifted), keeping the
    passes."""
    manifest = runtime.manifest
    prep = manifest.preprocessing
    rgb, geometry = to_model_u8(pixels, prep)
    x = normalise(rgb, prep)
    noise = noise_for(
        "complementary", runtime.grid, manifest.mask_ratio, int(manifest.errormap.get("passes", 4))
    )
    rec, mask = runtime.reconstruct(np.broadcast_to(x, (noise.shape[0], *x.shape)), noise)
    raw, _ = masked_error(x, rec, mask, manifest.patch_size, prep)
    error, counts = combine_passes(
        x,
        rec,
        mask,
        [(0, 0)] * noise.shape[0],
        manifest.patch_size,
        prep,
        declared_lowpass(manifest.errormap),
        declared_pooling(manifest.errormap, "complementary"),
    )
    if runtime.normaliser is not None:  # a structure table the package declares
        error = runtime.normaliser.apply(error, rgb[..., 0])
    emap = ErrorMap(
        error, counts, foreground_mask(rgb, geometry), geometry, "complementary", noise.shape[0]
    )
    return Pieces(np.ascontiguousarray(rgb[..., 0]), x, rec, mask, emap, raw)


def median_residual(p: Pieces) -> np.ndarray:
    import cv2

    return np.abs(p.gray.astype(np.float32) - cv2.medianBlur(p.gray, MEDIAN_KERNEL)) / 255.0


def gauss_residual(p: Pieces) -> np.ndarray:
    import cv2

    g = p.gray.astype(np.float32) / 255.0
    return np.abs(g - cv2.GaussianBlur(g, (0, 0), GAUSS_SIGMA))


def twin_u8(
    image: Any,
    pixels: np.ndarray,
    seed: int,
    index: int,
    size: int,
    model_size: int,
    quantum_noise: bool = True,
    version: int = GENERATOR_VERSION,
) -> np.ndarray | None:
    """The finding-free twin of an abnormal image as 8-bit model input [S, S] ("resize" mode),
    windowed with the abnormal image's own min-max: what a perfect normal-anatomy predictor
    would return (without quantum noise: the expected normal image, which a model can at best
    predict). None when the twin's anatomy differs (knee osteoarthritis draws its grade with
    other random numbers, so its twin is another knee)."""
    twin = generate_image(
        seed, index, size=size, abnormal=False, quantum_noise=quantum_noise, version=version
    )
    same = twin.bone_mask.shape == image.bone_mask.shape and (
        np.mean(twin.bone_mask.astype(bool) != image.bone_mask.astype(bool)) <= 0.01
    )
    if not same:
        return None
    windowed = window_to_u8(twin.monochrome2(), float(pixels.min()), float(pixels.max()))
    return resize_u8(windowed, model_size, model_size)


def twin_residual(sigma: float | None, expected: bool = False) -> MapFn:
    """|x - twin| on [0, 1] (Gaussian-blurred by `sigma` model pixels first when given), None
    where no twin matches. With `expected`, the twin is the noise-free one, so the image's own
    noise stays in the residual, as it would for any model; else the twin carries the same
    noise and normal images give zero."""
    import cv2

    def fn(p: Pieces) -> np.ndarray | None:
        twin = p.expected if expected else p.twin
        if twin is None:
            return None
        a, b = p.gray.astype(np.float32) / 255.0, twin.astype(np.float32) / 255.0
        if sigma:
            a, b = cv2.GaussianBlur(a, (0, 0), sigma), cv2.GaussianBlur(b, (0, 0), sigma)
        return np.abs(a - b)

    return fn


def lowpass(runtime: MaeRuntime, sigma: float = LOWPASS_SIGMA) -> Callable[[Pieces], np.ndarray]:
    m = runtime.manifest

    def fn(p: Pieces) -> np.ndarray:
        return lowpass_masked_error(p.x, p.rec, p.mask, m.patch_size, m.preprocessing, sigma)

    return fn


def pooled_errors(runtime: MaeRuntime) -> Callable[[Pieces], np.ndarray]:
    """The package's map with each pass's masked error pooled (`errormap.pooling: "error"`)."""
    m = runtime.manifest
    sigma = declared_lowpass(m.errormap)

    def fn(p: Pieces) -> np.ndarray:
        shifts = [(0, 0)] * p.rec.shape[0]
        return combine_passes(
            p.x, p.rec, p.mask, shifts, m.patch_size, m.preprocessing, sigma, "error"
        )[0]

    return fn


def multiscale(runtime: MaeRuntime, sigmas: tuple[float, ...]) -> Callable[[Pieces], np.ndarray]:
    """Mean of the low-pass errors at several scales (each scale's own units)."""
    scales = [lowpass(runtime, s) for s in sigmas]

    def fn(p: Pieces) -> np.ndarray:
        return np.mean([scale(p) for scale in scales], axis=0)

    return fn


@dataclass
class Tally:
    """Everything one map contributes to the metrics."""

    negatives: list[np.ndarray] = field(default_factory=list)
    positives: dict[str, list[np.ndarray]] = field(default_factory=dict)
    regions: list[tuple[str, np.ndarray]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    hits_no_implant: list[bool] = field(default_factory=list)
    peak_hits: list[bool] = field(default_factory=list)
    box_fraction: list[float] = field(default_factory=list)
    # by finding size relative to the model patch (`PATCH_SIZE_BINS`); an image counts in the
    # bin of its largest finding
    sized_positives: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict)
    sized_regions: list[tuple[str, np.ndarray]] = field(default_factory=list)
    image_bins: list[str | None] = field(default_factory=list)
    sized_hits: dict[str, list[bool]] = field(default_factory=dict)
    sized_peak_hits: dict[str, list[bool]] = field(default_factory=dict)


def tally_image(
    t: Tally,
    model_map: np.ndarray,
    emap: ErrorMap,
    image: Any,
    hotspot_threshold: float | None,
    patch: int,
) -> None:
    """Add one image's map (model space [S, S]) to `t`, scored at source resolution; finding
    sizes are measured in model patches of `patch` pixels."""
    import cv2

    full = to_source(model_map, emap.geometry)
    bone = image.bone_mask.astype(bool)
    finding = np.zeros_like(bone)
    scale = model_per_source(emap)
    largest = 0.0
    for f in image.findings:
        m = f.mask.astype(bool)
        finding |= m
        inside = m & bone
        patches = patches_spanned(m, scale, patch)
        largest = max(largest, patches)
        size = patch_size_bin(patches)
        t.positives.setdefault(f.type, []).append(full[inside])
        t.sized_positives.setdefault((f.type, size), []).append(full[inside])
        count, labels = cv2.connectedComponents(inside.astype(np.uint8), connectivity=8)
        for k in range(1, count):
            t.regions.append((f.type, full[labels == k]))
            t.sized_regions.append((size, full[labels == k]))
    t.negatives.append(full[bone & ~finding])
    t.scores.append(anomaly_score(model_map, emap.foreground, SCORE_PERCENTILE))
    t.labels.append(bool(image.findings))
    image_bin = patch_size_bin(largest) if image.findings else None
    t.image_bins.append(image_bin)
    if image.findings:
        spots = find_hotspots(
            model_map, emap.foreground, z_threshold=DEFAULT_Z, threshold=hotspot_threshold
        )
        spots = scale_hotspots(spots, emap.geometry.to_source, emap.geometry.source_shape)
        hit = bool(spots) and box_hits(
            (spots[0].x0, spots[0].y0, spots[0].x1, spots[0].y1), finding
        )
        t.hits.append(hit)
        if not any(f.type == "implant" for f in image.findings):
            t.hits_no_implant.append(hit)
        if spots:
            s = spots[0]
            t.box_fraction.append((s.x1 - s.x0) * (s.y1 - s.y0) / bone.size)
        peak = box_hits(peak_box(model_map, emap), finding)
        t.peak_hits.append(peak)
        assert image_bin is not None
        t.sized_hits.setdefault(image_bin, []).append(hit)
        t.sized_peak_hits.setdefault(image_bin, []).append(peak)


def model_per_source(emap: ErrorMap) -> tuple[float, float]:
    """Model-input pixels per source pixel along x and y (the map's geometry)."""
    x0, y0, x1, y1 = emap.geometry.content
    rows, cols = emap.geometry.source_shape
    return (x1 - x0) / cols, (y1 - y0) / rows


def peak_box(model_map: np.ndarray, emap: ErrorMap) -> tuple[int, int, int, int]:
    """The source-resolution footprint of the map's highest model pixel in the foreground."""
    inside = np.where(emap.foreground, model_map, -np.inf) if emap.foreground.any() else model_map
    row, col = np.unravel_index(int(np.argmax(inside)), inside.shape)
    xs, ys = emap.geometry.to_source(
        np.array([col, col + 1], float), np.array([row, row + 1], float)
    )
    return (int(np.floor(xs[0])), int(np.floor(ys[0])), int(np.ceil(xs[1])), int(np.ceil(ys[1])))


def summarise(t: Tally) -> dict[str, Any]:
    """The yardstick figures of one map."""
    neg = np.sort(np.concatenate(t.negatives))
    out: dict[str, Any] = {}
    all_pos = [a for arrays in t.positives.values() for a in arrays]
    no_implant = [a for k, arrays in t.positives.items() if k != "implant" for a in arrays]
    out["pixel_auroc"] = auroc_against(neg, np.concatenate(all_pos))
    out["pixel_auroc_no_implant"] = auroc_against(neg, np.concatenate(no_implant))
    out["pixel_auroc_by_type"] = {
        k: auroc_against(neg, np.concatenate(t.positives[k]))
        for k in FINDING_KINDS
        if k in t.positives
    }
    out["aupro"] = aupro(neg, [r for _, r in t.regions], MAX_FPR)
    out["aupro_no_implant"] = aupro(neg, [r for k, r in t.regions if k != "implant"], MAX_FPR)
    out["image_auroc"] = auroc(np.asarray(t.scores), np.asarray(t.labels))
    out["hit_rate"] = hit_rate(t.hits)
    out["hit_rate_no_implant"] = hit_rate(t.hits_no_implant)
    out["peak_hit_rate"] = hit_rate(t.peak_hits)
    out["top_box_median_area_fraction"] = (
        float(np.median(t.box_fraction)) if t.box_fraction else float("nan")
    )
    out["by_size"] = summarise_by_size(t, neg)
    out["counts"] = {
        "negative_pixels": int(neg.size),
        "regions": len(t.regions),
        "images": len(t.labels),
        "abnormal": int(sum(t.labels)),
    }
    return out


def summarise_by_size(t: Tally, neg: np.ndarray) -> dict[str, dict[str, Any]]:
    """The figures per finding size relative to the model patch: pixel AUROC (and per type),
    AUPRO, image AUROC (normals against the abnormal images whose largest finding has that
    size), top-hotspot and peak hit rates of those images."""
    scores, labels = np.asarray(t.scores), np.asarray(t.labels)
    bins = np.asarray([b or "" for b in t.image_bins])
    out: dict[str, dict[str, Any]] = {}
    for size in PATCH_SIZE_BINS:
        pos = [a for (_, s), arrays in t.sized_positives.items() if s == size for a in arrays]
        regions = [r for s, r in t.sized_regions if s == size]
        if not pos:
            continue
        keep = ~labels | (bins == size)
        out[size] = {
            "pixel_auroc": auroc_against(neg, np.concatenate(pos)),
            "pixel_auroc_by_type": {
                k: auroc_against(neg, np.concatenate(t.sized_positives[(k, size)]))
                for k in FINDING_KINDS
                if (k, size) in t.sized_positives
            },
            "aupro": aupro(neg, regions, MAX_FPR) if regions else float("nan"),
            "image_auroc": auroc(scores[keep], labels[keep]),
            "hit_rate": hit_rate(t.sized_hits.get(size, [])),
            "peak_hit_rate": hit_rate(t.sized_peak_hits.get(size, [])),
            "findings": {
                k: len(t.sized_positives[(k, size)])
                for k in FINDING_KINDS
                if (k, size) in t.sized_positives
            },
            "regions": len(regions),
            "images": int(np.sum(bins == size)),
        }
    return out


def fit_lut(
    runtime: MaeRuntime,
    n: int,
    seed: int,
    size: int,
    maps: dict[str, Callable[[Pieces], np.ndarray]],
    version: int = GENERATOR_VERSION,
) -> dict[str, ErrorNormaliser]:
    """A structure lookup table per named map, fitted on `n` NORMAL images of `seed`."""
    errors: dict[str, list[np.ndarray]] = {k: [] for k in maps}
    grays, fgs = [], []
    for i in range(n):
        image = generate_image(seed, i, size=size, abnormal=False, version=version)
        p = model_pieces(runtime, image.monochrome2())
        grays.append(p.gray)
        fgs.append(p.emap.foreground)
        for k, fn in maps.items():
            errors[k].append(fn(p))
    data = f"SynthMSK seed {seed}, {n} normal images of {size} px"
    return {k: fit_normaliser(errors[k], grays, fgs, data=data) for k in maps}


def latency(runtime: MaeRuntime, images: list[np.ndarray]) -> dict[str, float]:
    """Median seconds per image: decoded pixels -> model map, and -> full-resolution map."""
    runtime.error_map(images[0])
    to_model, to_full = [], []
    for pixels in images:
        start = time.perf_counter()
        emap = runtime.error_map(pixels)
        to_model.append(time.perf_counter() - start)
        emap.full_resolution()
        to_full.append(time.perf_counter() - start)
    return {
        "model_map_s": statistics.median(to_model),
        "full_resolution_map_s": statistics.median(to_full),
        "images": len(images),
    }


def fmt(v: float) -> str:
    return "  n/a" if v != v else f"{v:.3f}"


def report(results: dict[str, dict[str, Any]]) -> None:
    kinds = [
        k for k in FINDING_KINDS if any(k in r["pixel_auroc_by_type"] for r in results.values())
    ]
    head = [
        "map",
        "pixAUC",
        "noImpl",
        *kinds,
        "AUPRO",
        "AUPROnoI",
        "imgAUC",
        "hit",
        "hitNoI",
        "box%",
        "peak",
    ]
    print(" | ".join(head))
    for name, r in results.items():
        row = [
            name,
            fmt(r["pixel_auroc"]),
            fmt(r["pixel_auroc_no_implant"]),
            *[fmt(r["pixel_auroc_by_type"].get(k, float("nan"))) for k in kinds],
            fmt(r["aupro"]),
            fmt(r["aupro_no_implant"]),
            fmt(r["image_auroc"]),
            fmt(r["hit_rate"]),
            fmt(r["hit_rate_no_implant"]),
            f"{100 * r['top_box_median_area_fraction']:.2f}",
            fmt(r["peak_hit_rate"]),
        ]
        print(" | ".join(row))
    report_by_size(results)


def report_by_size(results: dict[str, dict[str, Any]]) -> None:
    """The figures by finding size relative to the model patch, one block per size."""
    for size in PATCH_SIZE_BINS:
        rows = {name: r["by_size"][size] for name, r in results.items() if size in r["by_size"]}
        if not rows:
            continue
        first = next(iter(rows.values()))
        found = ", ".join(f"{k} {n}" for k, n in first["findings"].items())
        print(
            f"\nfindings {size} (largest side at the model's input; {found}; "
            f"{first['images']} images counted here by their largest finding)"
        )
        kinds = [k for k in FINDING_KINDS if k in first["findings"]]
        print(" | ".join(["map", "pixAUC", *kinds, "AUPRO", "imgAUC", "hit", "peak"]))
        for name, r in rows.items():
            by_type = r["pixel_auroc_by_type"]
            cells = [fmt(by_type.get(k, float("nan"))) for k in kinds]
            figures = [r["aupro"], r["image_auroc"], r["hit_rate"], r["peak_hit_rate"]]
            print(" | ".join([name, fmt(r["pixel_auroc"]), *cells, *map(fmt, figures)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="abnormal images (and as many normal)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    parser.add_argument("--model", default="skelex-demo")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also score normalised / low-pass variants of the model map",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also score the residual against each image's finding-free twin (an upper bound)",
    )
    parser.add_argument(
        "--pooling",
        action="store_true",
        help="also score the plain complementary map (pooled errors, the map before issue #20)",
    )
    parser.add_argument("--fit-n", type=int, default=120)
    parser.add_argument("--fit-seed", type=int, default=FIT_SEED)
    parser.add_argument("--latency-n", type=int, default=50)
    parser.add_argument(
        "--synth-version",
        type=int,
        choices=GENERATOR_VERSIONS,
        default=GENERATOR_VERSION,
        help="SynthMSK generator version of the images (1: figures made before versions)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    from skelex_desktop.core.inference.registry import Registry
    from skelex_desktop.core.settings import Settings

    manifest = Registry.from_settings(Settings()).manifest(args.model)
    runtime = MaeRuntime(manifest, args.threads)
    base_threshold = manifest.errormap.get("hotspot_threshold")
    own_threshold = None if base_threshold is None else float(base_threshold)

    declared = declared_lowpass(manifest.errormap)
    own = "model" if declared is None else f"model (low-pass s{declared:g}, as declared)"
    maps: dict[str, MapFn] = {own: lambda p: p.emap.model_map}
    thresholds: dict[str, float | None] = {own: own_threshold}
    maps[own + ", z 3.5 hotspots"] = maps[own]
    if declared is not None:
        maps["model, plain error (before low-pass)"] = lambda p: p.raw
    if args.pooling and declared_pooling(manifest.errormap, "complementary") != "error":
        # the plain complementary map as shipped before issue #20: each pass's masked error
        # pooled (same passes, same low-pass), scored with the package's own threshold too
        pooled = pooled_errors(runtime)
        maps["model, pooled errors (plain complementary), own hotspots"] = pooled
        thresholds["model, pooled errors (plain complementary), own hotspots"] = own_threshold
        maps["model, pooled errors (plain complementary), z 3.5 hotspots"] = pooled
    maps[f"median{MEDIAN_KERNEL} residual"] = median_residual
    maps[f"gauss{GAUSS_SIGMA:g} residual"] = gauss_residual
    if args.variants:
        lp = lowpass(runtime)
        start = time.perf_counter()
        luts = fit_lut(
            runtime,
            args.fit_n,
            args.fit_seed,
            args.size,
            {"raw": lambda p: p.raw, "lowpass": lp, "median": median_residual},
            args.synth_version,
        )
        print(
            f"fitted lookup tables on {args.fit_n} normal images in "
            f"{time.perf_counter() - start:.0f} s"
        )
        maps["plain error / LUT"] = lambda p: luts["raw"].apply(p.raw, p.gray)
        if declared != LOWPASS_SIGMA:
            maps[f"low-pass s{LOWPASS_SIGMA:g}"] = lp
        maps[f"low-pass s{LOWPASS_SIGMA:g} / LUT"] = lambda p: luts["lowpass"].apply(lp(p), p.gray)
        maps[f"median{MEDIAN_KERNEL} residual / LUT"] = lambda p: luts["median"].apply(
            median_residual(p), p.gray
        )
        maps["low-pass s4"] = lowpass(runtime, 4.0)
        maps["multi-scale: mean of low-pass s1, s2, s4"] = multiscale(runtime, (1.0, 2.0, 4.0))
    if args.ceiling:
        if manifest.preprocessing.resize != "resize":
            parser.error("--ceiling needs a package with the plain 'resize' preprocessing")
        maps["ceiling: twin residual (perfect normal prior)"] = twin_residual(None)
        maps[f"ceiling: twin residual, low-pass s{LOWPASS_SIGMA:g}"] = twin_residual(LOWPASS_SIGMA)
        maps[f"ceiling: noise-free twin (expected image), low-pass s{LOWPASS_SIGMA:g}"] = (
            twin_residual(LOWPASS_SIGMA, expected=True)
        )
    for k in maps:
        thresholds.setdefault(k, None)

    tallies = {k: Tally() for k in maps}
    normals: list[np.ndarray] = []
    start = time.perf_counter()
    for i in range(2 * args.n):
        abnormal = i < args.n
        index = i if abnormal else NORMAL_OFFSET + i - args.n
        image = generate_image(
            args.seed, index, size=args.size, abnormal=abnormal, version=args.synth_version
        )
        pixels = image.monochrome2()
        if not abnormal and len(normals) < args.latency_n:
            normals.append(pixels)
        p = model_pieces(runtime, pixels)
        if args.ceiling:
            where = (image, pixels, args.seed, index, args.size, manifest.preprocessing.size)
            v = args.synth_version
            p.twin = twin_u8(*where, version=v) if abnormal else p.gray
            p.expected = twin_u8(*where, quantum_noise=False, version=v)
        if i == 0:  # the bench's replica is the runtime's map
            assert np.allclose(p.emap.model_map, runtime.error_map(pixels).model_map, atol=1e-6)
        for k, fn in maps.items():
            model_map = fn(p)
            if model_map is not None:
                tally_image(
                    tallies[k], model_map, p.emap, image, thresholds[k], manifest.patch_size
                )
    print(
        f"{2 * args.n} images (seed {args.seed}, {args.size} px, SynthMSK version "
        f"{args.synth_version}) in "
        f"{time.perf_counter() - start:.0f} s"
    )
    results = {k: summarise(t) for k, t in tallies.items()}
    timing = latency(runtime, normals)
    report(results)
    print(
        f"latency ({args.model}, {args.threads} thread(s), median of {timing['images']}): "
        f"pixels -> model map {1000 * timing['model_map_s']:.0f} ms, "
        f"-> full-resolution map {1000 * timing['full_resolution_map_s']:.0f} ms"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": results,
                    "latency": timing,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
