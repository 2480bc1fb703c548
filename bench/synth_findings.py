"""How big and how contrasted are SynthMSK findings? Sizes in mm and model patches, contrasts.

Renders `--n` abnormal images per finding type of one seed (`generate_image(seed, i,
finding=...)`) and prints, per finding type and subtype:
- size: the larger side of the mask's bounding box in mm (pixel spacing of the image) and in
  model patches (`--model-size` px input, `--patch` px patches); for fractures also the gap
  width and the displacement, for lesions the diameter of the lesion itself along the bone
  axis (the mask's box adds the soft edge and moth-eaten satellites), all in mm;
- contrast, on the noise-free rendering (`quantum_noise=False`) in stored MONOCHROME2 units,
  which are linear in log exposure, i.e. in projected attenuation:
  - `loss`: mean change inside the mask against the image's finding-free twin (same anatomy,
    exposure), relative to the twin's bone signal there (twin minus the soft tissue just
    outside the bone). -0.40 means 40 % of the projected bone signal is gone: comparable to
    the "30-50 % loss of bone mineral before a lytic lesion shows" of the literature;
  - `ring`: mean inside the mask minus the mean of a 3 mm ring of bone around it, relative to
    the same ring's bone signal: what the eye sees locally (includes the edge enhancement);
  - `cnr`: inside-minus-ring difference in units of the quantum noise's standard deviation
    (noisy minus noise-free rendering, in the ring).
  Knee osteoarthritis changes the anatomy (its twin is another knee): sizes only.

Usage: python bench/synth_findings.py [--n 24] [--seed 0] [--size 512] [--version V]
                                      [--by-severity]
Takes about 20-40 s on one core at the defaults.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from typing import Any

import cv2
import numpy as np

from skelex_desktop.core.synth import GENERATOR_VERSION, GENERATOR_VERSIONS, generate_image
from skelex_desktop.core.synth.image import FINDING_KINDS
from skelex_desktop.core.synth.lesions import Fracture, Implant, Lesion

RING_MM = 3.0
SOFT_MM = (1.0, 4.0)  # the soft tissue reference: this far outside the host bone


def _disk(radius_px: float) -> np.ndarray:
    r = max(1, int(round(radius_px)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _grow(mask: np.ndarray, radius_px: float) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), _disk(radius_px)) > 0


def _render(seed: int, index: int, size: int, version: int, **kw: Any) -> Any:
    return generate_image(seed, index, size=size, version=version, **kw)


def contrasts(
    img: np.ndarray,
    twin: np.ndarray | None,
    noisy: np.ndarray,
    mask: np.ndarray,
    host: np.ndarray,
    bone: np.ndarray,
    spacing: float,
) -> dict[str, float]:
    """loss (against the twin), ring and cnr of one finding; NaN where undefined."""
    out = {"loss": float("nan"), "ring": float("nan"), "cnr": float("nan")}
    near = _grow(host, SOFT_MM[1] / spacing) & ~_grow(bone, SOFT_MM[0] / spacing)
    if near.sum() < 10 or not mask.any():
        return out
    soft = float(np.median(img[near]))
    if twin is not None:
        signal = float(np.mean(twin[mask])) - soft
        if signal > 1e-6:
            out["loss"] = float(np.mean(img[mask] - twin[mask])) / signal
    ring = _grow(mask, RING_MM / spacing) & ~mask & bone
    if ring.sum() >= 10:
        ring_mean = float(np.mean(img[ring]))
        diff = float(np.mean(img[mask])) - ring_mean
        if ring_mean - soft > 1e-6:
            out["ring"] = diff / (ring_mean - soft)
        sd = float(np.std(noisy[ring] - img[ring]))
        if sd > 1e-6:
            out["cnr"] = diff / sd
    return out


def measure(
    n: int,
    seed: int,
    size: int,
    model_size: int,
    patch: int,
    version: int,
    by_severity: bool = False,
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per (type, subtype): lists of measured values."""
    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    to_patches = model_size / size / patch
    for k, kind in enumerate(FINDING_KINDS):
        for i in range(n):
            index = 10_000 * (k + 1) + i
            region = "knee" if kind == "osteoarthritis" else None
            clean = _render(
                seed, index, size, version, finding=kind, region=region, quantum_noise=False
            )
            noisy = _render(seed, index, size, version, finding=kind, region=region)
            twin = None
            if kind != "osteoarthritis":
                t = _render(
                    seed, index, size, version, abnormal=False, region=region, quantum_noise=False
                )
                same = np.mean(t.bone_mask != clean.bone_mask) <= 0.01
                twin = t.monochrome2().astype(np.float32) if same else None
            sp = float(clean.meta["spacing_mm"])
            img = clean.monochrome2().astype(np.float32)
            noisy_px = noisy.monochrome2().astype(np.float32)
            for f in clean.findings:
                sub = f.detail.split(" ")[0] if f.type != "osteoarthritis" else f.detail
                if f.type == "fracture":
                    sub = f.detail + (" (under plate)" if kind == "implant" else "")
                if f.type == "implant" and isinstance(f.spec, Implant):
                    sub = f"{2 * f.spec.screw_r * sp:.1f} mm screws"
                if by_severity and f.type != "osteoarthritis":
                    sub += f", {f.severity}"
                r = rows[(f.type, sub)]
                side = max(f.box[2] - f.box[0], f.box[3] - f.box[1])
                r["box_mm"].append(side * sp)
                r["patches"].append(side * to_patches)
                r["spacing"].append(sp)
                s = f.spec
                if isinstance(s, Fracture):
                    r["gap_mm"].append(s.width * sp)
                    r["depth"].append(s.depth)
                    r["shift_mm"].append(float(np.hypot(*s.shift)) * sp)
                    r["angle"].append(abs(s.angle))
                elif isinstance(s, Lesion):
                    r["diam_mm"].append(2 * s.radius * sp)
                    r["diam_patches"].append(2 * s.radius * to_patches)
                elif isinstance(s, Implant):
                    r["plate_mm"].append(float(np.hypot(s.p1[0] - s.p0[0], s.p1[1] - s.p0[1])) * sp)
                    r["plate_w_mm"].append(max(s.thickness, s.path) * sp)
                    r["screw_mm"].append(2 * s.screw_r * sp)
                if f.type != "osteoarthritis" and f.host_mask is not None:
                    c = contrasts(img, twin, noisy_px, f.mask, f.host_mask, clean.bone_mask, sp)
                    for name, v in c.items():
                        if np.isfinite(v):
                            r[name].append(v)
    return rows


def _q(values: list[float], fmt: str = "{:.1f}") -> str:
    if not values:
        return "-"
    a = np.asarray(values)
    lo, med, hi = np.percentile(a, [10, 50, 90])
    return f"{fmt.format(med)} [{fmt.format(lo)}-{fmt.format(hi)}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="images per finding type")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--model-size", type=int, default=224)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument(
        "--version",
        type=int,
        choices=GENERATOR_VERSIONS,
        default=GENERATOR_VERSION,
        help="SynthMSK generator version (default: the latest)",
    )
    ap.add_argument("--by-severity", action="store_true", help="one row per severity too")
    args = ap.parse_args()
    start = time.perf_counter()
    rows = measure(
        args.n, args.seed, args.size, args.model_size, args.patch, args.version, args.by_severity
    )
    took = time.perf_counter() - start
    print(
        f"SynthMSK findings, seed {args.seed}, {args.n} images per type, {args.size} px "
        f"(model {args.model_size} px, patch {args.patch}); generator version {args.version}; "
        f"{took:.0f} s"
    )
    print("median [10th-90th percentile]; loss/ring: fraction of the local bone signal")
    cols = (
        ("n", None),
        ("spacing mm", "spacing"),
        ("box side mm", "box_mm"),
        ("box side patches", "patches"),
        ("lesion diam mm", "diam_mm"),
        ("lesion diam patches", "diam_patches"),
        ("gap mm", "gap_mm"),
        ("shift mm", "shift_mm"),
        ("plate mm", "plate_mm"),
        ("loss vs twin", "loss"),
        ("ring", "ring"),
        ("cnr", "cnr"),
    )
    print(" | ".join(["type", "subtype", *(c for c, _ in cols)]))
    for (ftype, sub), r in sorted(rows.items()):
        cells = []
        for _, key in cols:
            if key is None:
                cells.append(str(len(r["box_mm"])))
            else:
                fmt = "{:.2f}" if key in ("loss", "ring", "spacing", "gap_mm") else "{:.1f}"
                cells.append(_q(r.get(key, []), fmt))
        print(" | ".join([ftype, sub, *cells]))
    overall: dict[str, list[float]] = defaultdict(list)
    for (ftype, _), r in rows.items():
        overall[ftype] += r["patches"]
    print(
        "median box side in patches per type: "
        + ", ".join(f"{t} {statistics.median(v):.2f}" for t, v in overall.items() if v)
    )


if __name__ == "__main__":
    main()
