"""The 16-px patch grid of error maps: where it comes from, and what removes it (issue #20).

  python bench/grid.py [--synth-n 20] [--latency-n 20] [--diagnose] [--sheet PNG] [--json F]

Images: the pydicom-data CR radiographs available offline (RG1 chest, RG3 leg) and `--synth-n`
SynthMSK abnormal images of 512 px (seed 90210, indices 0..n-1).

Measure: `errormap.grid_strength` on the model-space map inside the app's anatomy mask (the
largest over the median of the mean |neighbour difference| at the 16 phases of the patch grid;
~1 without a grid). SynthMSK: the median over images, and "pooled" (the phases summed over all
images first, each image's differences scaled by its own median, so anatomy averages out and
only what sits at a fixed phase remains). The input image's own measure is printed as the
floor a map that follows the anatomy cannot go below (RG3's long straight cortices give 1.4).

Variants: error maps through `MaeRuntime.error_map` with the package's `errormap` settings
and one change each (pooling, shifts, passes, mode). `--diagnose` adds maps made from one
batch of the 4 unshifted passes to locate the grid: pooled errors and blended reconstructions
at low-pass sigma none / 1 / 2 / 4 / 8, and pooled errors with each reconstructed patch's
mean error removed. Latency: median of `MaeRuntime.error_map` on `--latency-n` normal 512 px
images per variant, interleaved, as a ratio to the first variant (one thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from skelex_desktop.core.inference.errormap import (
    blended_error,
    expand_mask,
    foreground_mask,
    grid_phases,
    grid_strength,
    masked_sums,
    noise_for,
    unpatchify,
)
from skelex_desktop.core.inference.normalisation import combine_passes, lowpass_masked_sums
from skelex_desktop.core.inference.package import verify_package
from skelex_desktop.core.inference.preprocess import denormalise, normalise, to_model_u8
from skelex_desktop.core.inference.service import MaeRuntime

RADIOGRAPHS = ("RG1_UNCR.dcm", "RG3_UNCR.dcm")
SEED = 90210
QUARTER = [[0, 0], [0, 8], [8, 0], [8, 8]]  # half a patch along rows, columns and both
BEFORE = "plain complementary: pooled errors (shipped before)"
AFTER = "blended reconstructions (new default)"
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    BEFORE: ("complementary", {"pooling": "error"}),
    AFTER: ("complementary", {"pooling": "reconstruction"}),
    "blended, 4 offsets x 2 passes, Hann windows": (
        "complementary",
        {"pooling": "reconstruction", "shifts": QUARTER, "passes": 8},
    ),
    "pooled errors, 4 offsets x 2 passes": (
        "complementary",
        {"pooling": "error", "shifts": QUARTER, "passes": 8},
    ),
    "pooled errors, 8 unshifted passes": ("complementary", {"pooling": "error", "passes": 8}),
    "reference mode: 10 random masks": ("reference", {}),
}


def load_images(synth_n: int) -> dict[str, np.ndarray]:
    import pydicom.data

    from skelex_desktop.core.ingest.pixels import read_frame
    from skelex_desktop.core.synth import generate_image

    images = {
        name[:3]: read_frame(Path(str(pydicom.data.get_testdata_file(name))), 0).model_pixels
        for name in RADIOGRAPHS
    }
    for i in range(synth_n):
        images[f"synth {i}"] = generate_image(SEED, i, size=512, abnormal=True).monochrome2()
    return images


def dc_removed_sums(
    x: np.ndarray, rec: np.ndarray, mask: np.ndarray, patch: int, prep: Any, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """`lowpass_masked_sums` after subtracting from every reconstructed patch its mean error
    (its DC offset against the input), so only the error's structure inside a patch is left."""
    target = denormalise(x, prep).mean(axis=0)
    recon = denormalise(unpatchify(rec, patch, x.shape[0]), prep).mean(axis=1)
    k, size = recon.shape[0], recon.shape[-1]
    g = size // patch
    dc = (recon - target).reshape(k, g, patch, g, patch).mean(axis=(2, 4))
    recon = recon - np.repeat(np.repeat(dc, patch, axis=1), patch, axis=2)
    masked = expand_mask(mask.astype(np.float32), patch)
    return _pooled(recon, target, masked, sigma)


def _pooled(
    recon: np.ndarray, target: np.ndarray, masked: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    from skelex_desktop.core.inference.normalisation import _gaussian

    lp = _gaussian(target, sigma)
    per = np.stack(
        [
            (_gaussian(np.where(m > 0, r, target), sigma) - lp) ** 2
            for r, m in zip(recon, masked, strict=True)
        ]
    )
    return (per * masked).sum(axis=0), masked.sum(axis=0)


def diagnostic_maps(runtime: MaeRuntime, x: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """Maps of one batch of the 4 unshifted complementary passes (see the module doc)."""
    m = runtime.manifest
    prep, patch = m.preprocessing, m.patch_size
    noise = noise_for("complementary", runtime.grid, m.mask_ratio, 4)
    rec, mask = runtime.reconstruct(np.broadcast_to(x, (4, *x.shape)), noise)
    unshifted = [(0, 0)] * 4

    def pooled(sigma: float | None) -> Callable[[], np.ndarray]:
        def fn() -> np.ndarray:
            if sigma is None:
                total, counts = masked_sums(x, rec, mask, patch, prep)
            else:
                total, counts = lowpass_masked_sums(x, rec, mask, patch, prep, sigma)
            return np.divide(total, counts, out=np.zeros_like(total), where=counts > 0)

        return fn

    def blended(sigma: float | None) -> Callable[[], np.ndarray]:
        return lambda: blended_error(x, rec, mask, unshifted, patch, prep, sigma)[0]

    def dc_removed() -> np.ndarray:
        total, counts = dc_removed_sums(x, rec, mask, patch, prep, 2.0)
        return np.divide(total, counts, out=np.zeros_like(total), where=counts > 0)

    maps: dict[str, Callable[[], np.ndarray]] = {
        "input image itself (floor)": lambda: denormalise(x, prep).mean(axis=0)
    }
    for sigma in (None, 1.0, 2.0, 4.0, 8.0):
        label = "none" if sigma is None else f"{sigma:g}"
        maps[f"diag: pooled errors, low-pass {label}"] = pooled(sigma)
    maps["diag: pooled errors, low-pass 2, patch DC removed"] = dc_removed
    for sigma in (None, 1.0, 2.0, 4.0, 8.0):
        label = "none" if sigma is None else f"{sigma:g}"
        maps[f"diag: blended, low-pass {label}"] = blended(sigma)
    # the runtime's own path on the same passes: the bench's blend is the runtime's
    maps["diag: combine_passes (runtime), low-pass 2"] = lambda: combine_passes(
        x, rec, mask, unshifted, patch, prep, 2.0, "reconstruction"
    )[0]
    return maps


def variant_map(
    runtime: MaeRuntime, pixels: np.ndarray, mode: str, settings: dict[str, Any]
) -> Callable[[], np.ndarray]:
    return lambda: runtime.error_map(pixels, mode, errormap=settings).model_map


def measure(args: argparse.Namespace) -> dict[str, Any]:
    runtime = MaeRuntime(verify_package(Path(args.package)), 1)
    m = runtime.manifest
    prep, patch = m.preprocessing, m.patch_size
    images = load_images(args.synth_n)
    grid: dict[str, dict[str, float]] = {}
    pooled: dict[str, np.ndarray] = {}
    kept: dict[str, dict[str, Any]] = {}
    for name, pixels in images.items():
        rgb, geometry = to_model_u8(pixels, prep)
        x = normalise(rgb, prep)
        fg = foreground_mask(rgb, geometry)
        maps: dict[str, Callable[[], np.ndarray]] = {}
        if args.diagnose:
            maps.update(diagnostic_maps(runtime, x))
        for label, (mode, change) in VARIANTS.items():
            maps[label] = variant_map(runtime, pixels, mode, {**m.errormap, **change})
        for label, fn in maps.items():
            emap = fn()
            grid.setdefault(label, {})[name] = grid_strength(emap, patch, fg)
            if name.startswith("synth"):
                diffs = np.abs(np.diff(emap, axis=1))[fg[:, 1:] & fg[:, :-1]]
                scale = float(np.median(diffs)) or 1.0
                phases = grid_phases(emap / scale, patch, fg)
                pooled[label] = pooled.get(label, 0) + np.nan_to_num(phases)
            if label in (BEFORE, AFTER) and (not name.startswith("synth") or name in SHEET):
                kept.setdefault(name, {"pixels": pixels, "fg": fg})[label] = emap
    rows = {}
    for label, per in grid.items():
        synth = [v for k, v in per.items() if k.startswith("synth")]
        p = pooled.get(label)
        rows[label] = {
            "RG1": per.get("RG1"),
            "RG3": per.get("RG3"),
            "synth_median": float(np.median(synth)) if synth else None,
            "synth_max": float(np.max(synth)) if synth else None,
            "synth_pooled": float(p.max() / np.median(p)) if p is not None else None,
        }
    latency = latency_ratios(runtime, args.latency_n)
    for label, ratio in latency.items():
        rows[label]["latency_ratio"] = ratio
    if args.sheet:
        sheet(kept, Path(args.sheet))
    return {"grid": rows, "synth_n": args.synth_n}


SHEET = ("synth 1", "synth 2")


def latency_ratios(runtime: MaeRuntime, n: int) -> dict[str, float]:
    """Median seconds of `error_map` per variant on `n` normal 512 px images (interleaved),
    as a ratio to the first variant."""
    from skelex_desktop.core.synth import generate_image

    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    m = runtime.manifest
    for i in range(n):
        pixels = generate_image(SEED, 500_000 + i, size=512).monochrome2()
        for label, (mode, change) in VARIANTS.items():
            settings = {**m.errormap, **change}
            if i == 0:
                runtime.error_map(pixels, mode, errormap=settings)  # warm up
            start = time.perf_counter()
            runtime.error_map(pixels, mode, errormap=settings)
            times[label].append(time.perf_counter() - start)
    base = statistics.median(times[BEFORE])
    print(f"latency of '{BEFORE}': {1000 * base:.0f} ms median ({n} images, 1 thread)")
    return {k: statistics.median(v) / base for k, v in times.items()}


def _panel(pixels: np.ndarray, fg: np.ndarray, emap: np.ndarray, size: int) -> np.ndarray:
    import cv2

    gray = cv2.resize(
        ((pixels - pixels.min()) / max(float(np.ptp(pixels)), 1e-6) * 255).astype(np.uint8),
        (size, size),
        interpolation=cv2.INTER_AREA,
    )
    top = float(np.percentile(emap[fg], 99.5)) if fg.any() else float(emap.max())
    heat = cv2.applyColorMap(
        (np.clip(cv2.resize(emap, (size, size)) / (top or 1.0), 0, 1) * 255).astype(np.uint8),
        cv2.COLORMAP_INFERNO,
    )
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    inside = cv2.resize(fg.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return np.where(inside[..., None] > 0, (0.25 * base + 0.75 * heat).astype(np.uint8), base)


def sheet(kept: dict[str, dict[str, Any]], path: Path, size: int = 336) -> None:
    """Rows: before / after; columns: RG1, RG3, two SynthMSK images, then RG3's right bone and
    RG1's mediastinum enlarged (model pixels 3x, no smoothing)."""
    import cv2

    rows = []
    for label, short in ((BEFORE, "before: pooled errors"), (AFTER, "after: blended")):
        panels = [_panel(k["pixels"], k["fg"], k[label], size) for k in kept.values()]
        for name, (r0, r1, c0, c1) in (("RG3", (40, 152, 130, 186)), ("RG1", (56, 168, 84, 140))):
            if name in kept:
                emap = kept[name][label]
                fg = kept[name]["fg"]
                top = float(np.percentile(emap[fg], 99.5))
                crop = (np.clip(emap[r0:r1, c0:c1] / top, 0, 1) * 255).astype(np.uint8)
                crop = cv2.resize(crop, (3 * (c1 - c0), size), interpolation=cv2.INTER_NEAREST)
                panels.append(cv2.applyColorMap(crop, cv2.COLORMAP_INFERNO))
        row = np.hstack(panels)
        cv2.putText(row, short, (6, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        rows.append(row)
    cv2.imwrite(str(path), np.vstack(rows))
    print(f"wrote {path}")


def report(result: dict[str, Any]) -> None:
    def f(v: float | None) -> str:
        return "  -  " if v is None else f"{v:5.2f}"

    print(
        f"grid measure (model-space map inside the anatomy; ~1 = no grid); SynthMSK: "
        f"{result['synth_n']} images"
    )
    print("map | RG1 | RG3 | synth median | synth max | synth pooled | latency ratio")
    for label, r in result["grid"].items():
        cells = [r["RG1"], r["RG3"], r["synth_median"], r["synth_max"], r["synth_pooled"]]
        print(" | ".join([label, *map(f, cells), f(r.get("latency_ratio"))]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth-n", type=int, default=20)
    parser.add_argument("--latency-n", type=int, default=20)
    parser.add_argument("--diagnose", action="store_true")
    parser.add_argument("--sheet")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--package", default=str(Path(__file__).parents[1] / "models/skelex-demo"))
    args = parser.parse_args()
    result = measure(args)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
