"""Hotspots on shutter edges: how often does the top hotspot sit on the collimation edge, the
image border or a burned-in marker? (issue #20)

Two steps, so that the first can run on an older checkout (it uses only long-standing APIs:
`verify_package`, `MaeRuntime.analyse`, `generate_image`, `read_frame`) and the second scores
both runs against the same edges:

  python bench/shutter.py analyse --out after.json [--n 100] [--seeds 90210 4242]
  PYTHONPATH=/tmp/before python bench/shutter.py analyse --out before.json   # old code
  python bench/shutter.py score before.json after.json [--sheet docs/x.png]

`analyse`: SynthMSK abnormal images of 512 px (indices 0..n-1 of each seed) and the
pydicom-data CR radiographs available offline (RG1, RG3: each once), through
`MaeRuntime.analyse` as the app runs it; stores every image's hotspots (source pixels), and
for SynthMSK the generator's collimation (its `Exposure`, captured while rendering) and
marker box; the model-space maps of the first 4 SynthMSK images and of the radiographs for
the contact sheet; the median time of `MaeRuntime.error_map` on 512 px images and the share
of it spent in `foreground_mask`, both measured in the same run.

`score`: an image's top hotspot is "on an edge" when its box comes within 12 px (at 512 px;
12 px per 512 px of the longer side on larger images) of a pixel outside the exposed field,
of the image border or of the marker. SynthMSK: the generator's field (`physics.field_mask`
> 0.5) and marker box. Radiographs: outside the blades `exposed_field.detect_field` finds
(and its markers), checked by eye on the contact sheet.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

RADIOGRAPHS = ("RG1_UNCR.dcm", "RG3_UNCR.dcm")  # the J2K/UNCI files hold the same pixels
RADIUS_512 = 12
SHEET_SYNTH = 4


def _runtime(package: str) -> Any:
    from skelex_desktop.core.inference.package import verify_package
    from skelex_desktop.core.inference.service import MaeRuntime

    return MaeRuntime(verify_package(Path(package)), 1)


def _record(runtime: Any, pixels: np.ndarray, keep_map: bool) -> dict[str, Any]:
    result = runtime.analyse(pixels)
    out: dict[str, Any] = {
        "shape": list(result.error_map.shape),
        "hotspots": [[h.x0, h.y0, h.x1, h.y1, h.score] for h in result.hotspots],
        "score": result.score,
    }
    if keep_map:
        emap = runtime.error_map(pixels)
        out["model_map"] = emap.model_map.tolist()
        out["foreground"] = emap.foreground.astype(int).tolist()
        out["content"] = list(emap.geometry.content)
    return out


def analyse(args: argparse.Namespace) -> None:
    import pydicom.data

    import skelex_desktop.core.synth.image as synth_image
    from skelex_desktop.core.ingest.pixels import read_frame

    runtime = _runtime(args.package)
    captured: list[Any] = []
    original = synth_image._exposure

    def capture(*a: Any, **k: Any) -> Any:
        exposure = original(*a, **k)
        captured.append(exposure)
        return exposure

    synth_image._exposure = capture  # record the collimation each image is rendered with
    images: list[dict[str, Any]] = []
    try:
        for seed in args.seeds:
            for i in range(args.n):
                image = synth_image.generate_image(seed, i, size=512, abnormal=True)
                rec = _record(
                    runtime, image.monochrome2(), seed == args.seeds[0] and i < SHEET_SYNTH
                )
                rec.update(
                    kind="synth",
                    name=f"SynthMSK {seed}/{i} {image.meta['region']} {image.meta['view']}",
                    exposure=dataclasses.asdict(captured[-1]),
                    marker_box=list(image.meta["marker_box"]),
                    pixels=image.monochrome2().tolist() if "model_map" in rec else None,
                )
                images.append(rec)
    finally:
        synth_image._exposure = original
    for name in RADIOGRAPHS:
        pixels = read_frame(Path(pydicom.data.get_testdata_file(name)), 0).model_pixels
        rec = _record(runtime, pixels, True)
        small = pixels[:: max(1, pixels.shape[0] // 512), :: max(1, pixels.shape[1] // 512)]
        rec.update(kind="radiograph", name=name, pixels=small.tolist())
        images.append(rec)
    # latency on 512 px images, and the foreground's share of it, in this run
    import skelex_desktop.core.inference.service as service

    spent: list[float] = []
    plain_foreground = service.foreground_mask

    def timed_foreground(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        out = plain_foreground(*a, **k)
        spent.append(time.perf_counter() - t)
        return out

    service.foreground_mask = timed_foreground  # type: ignore[assignment]
    totals = []
    try:
        for i in range(args.latency_n):
            pixels = synth_image.generate_image(args.seeds[0], 500_000 + i, size=512).monochrome2()
            t = time.perf_counter()
            runtime.error_map(pixels)
            totals.append(time.perf_counter() - t)
    finally:
        service.foreground_mask = plain_foreground  # type: ignore[assignment]
    report = {
        "images": images,
        "latency_ms": 1000 * statistics.median(totals),
        "foreground_share": sum(spent) / sum(totals),
    }
    Path(args.out).write_text(json.dumps(report))
    print(f"wrote {args.out}: {len(images)} images, map {report['latency_ms']:.0f} ms median")


def _edge_zone(rec: dict[str, Any]) -> np.ndarray:
    """bool [rows, cols]: pixels within the radius of the field edge, border or markers."""
    import cv2

    rows, cols = rec["shape"]
    outside = np.zeros((rows, cols), bool)
    if rec["kind"] == "synth":
        from skelex_desktop.core.synth.physics import Exposure, field_mask

        exposure = Exposure(**{k: v for k, v in rec["exposure"].items()})
        outside |= field_mask(rows, exposure) <= 0.5
        x0, y0, x1, y1 = rec["marker_box"]
        outside[max(0, y0) : y1, max(0, x0) : x1] = True
    else:
        from skelex_desktop.core.inference.exposed_field import detect_field
        from skelex_desktop.core.inference.preprocess import Preprocessing, to_model_u8

        pixels = np.asarray(rec["pixels"], np.float32)
        rgb, _ = to_model_u8(pixels, Preprocessing())
        found = detect_field(rgb[..., 0])
        bad = (~found.field | found.markers).astype(np.uint8)
        outside |= cv2.resize(bad, (cols, rows), interpolation=cv2.INTER_NEAREST) > 0
    outside[0, :] = outside[-1, :] = outside[:, 0] = outside[:, -1] = True
    r = max(1, round(RADIUS_512 * max(rows, cols) / 512))
    dist = cv2.distanceTransform((~outside).astype(np.uint8), cv2.DIST_L2, 5)
    return np.asarray(dist <= r)


def _on_edge(rec: dict[str, Any], zone: np.ndarray) -> bool | None:
    if not rec["hotspots"]:
        return None
    x0, y0, x1, y1, _ = rec["hotspots"][0]
    return bool(zone[int(y0) : int(y1), int(x0) : int(x1)].any())


def score(args: argparse.Namespace) -> None:
    runs = [json.loads(Path(p).read_text()) for p in args.runs]
    zones = [_edge_zone(rec) for rec in runs[0]["images"]]
    print(f"top hotspot within {RADIUS_512} px (at 512 px) of field edge / border / marker")
    for path, run in zip(args.runs, runs, strict=True):
        for kind in ("synth", "radiograph"):
            recs = [(r, z) for r, z in zip(run["images"], zones, strict=True) if r["kind"] == kind]
            flags = [_on_edge(r, z) for r, z in recs]
            have = [f for f in flags if f is not None]
            share = sum(have) / len(have) if have else 0.0
            names = [r["name"] for (r, _), f in zip(recs, flags, strict=True) if f]
            print(
                f"{path}: {kind}: {sum(have)} of {len(have)} images with a hotspot "
                f"({len(recs)} images) = {100 * share:.1f} %"
                + (f"  [{', '.join(names)}]" if kind == "radiograph" else "")
            )
        print(
            f"{path}: error_map median {run['latency_ms']:.0f} ms per 512 px image, "
            f"foreground {100 * run['foreground_share']:.1f} % of it"
        )
    if args.sheet:
        sheet(runs, Path(args.sheet))


def _panel(rec: dict[str, Any], size: int = 256) -> np.ndarray:
    """The image with its map (inside the foreground) in colour and the hotspots boxed."""
    import cv2

    pixels = np.asarray(rec["pixels"], np.float32)
    gray = cv2.resize(
        ((pixels - pixels.min()) / max(float(np.ptp(pixels)), 1e-6) * 255).astype(np.uint8),
        (size, size),
        interpolation=cv2.INTER_AREA,
    )
    x0, y0, x1, y1 = rec["content"]
    emap = np.asarray(rec["model_map"], np.float32)[y0:y1, x0:x1]
    fg = np.asarray(rec["foreground"], np.uint8)[y0:y1, x0:x1]
    inside = emap[fg > 0] if fg.any() else emap.ravel()
    top = float(np.percentile(inside, 99.5)) or 1.0
    heat = cv2.applyColorMap(
        (np.clip(cv2.resize(emap, (size, size)) / top, 0, 1) * 255).astype(np.uint8),
        cv2.COLORMAP_INFERNO,
    )
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    fgs = cv2.resize(fg, (size, size), interpolation=cv2.INTER_NEAREST)[..., None] > 0
    out = np.where(fgs, (0.45 * base + 0.55 * heat).astype(np.uint8), base)
    rows, cols = rec["shape"]
    for k, (bx0, by0, bx1, by1, _) in enumerate(rec["hotspots"][:3]):
        p0 = (int(bx0 * size / cols), int(by0 * size / rows))
        p1 = (int(bx1 * size / cols), int(by1 * size / rows))
        cv2.rectangle(out, p0, p1, (0, 255, 0) if k == 0 else (0, 200, 255), 2 if k == 0 else 1)
    return out


def sheet(runs: list[dict[str, Any]], path: Path) -> None:
    """Rows: before / after; columns: the SynthMSK images and the radiographs kept."""
    import cv2

    rows = []
    for label, run in zip(("before", "after"), runs, strict=False):
        panels = [_panel(r) for r in run["images"] if r.get("model_map") is not None]
        row = np.hstack(panels)
        cv2.putText(row, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        rows.append(row)
    cv2.imwrite(str(path), np.vstack(rows))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    a = sub.add_parser("analyse")
    a.add_argument("--out", required=True)
    a.add_argument("--n", type=int, default=100)
    a.add_argument("--seeds", type=int, nargs="+", default=[90210, 4242])
    a.add_argument("--latency-n", type=int, default=30)
    a.add_argument("--package", default=str(Path(__file__).parents[1] / "models/skelex-demo"))
    s = sub.add_parser("score")
    s.add_argument("runs", nargs="+")
    s.add_argument("--sheet")
    args = parser.parse_args()
    analyse(args) if args.step == "analyse" else score(args)


if __name__ == "__main__":
    main()
