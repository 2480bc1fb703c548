"""Heads from the error map (issue #20, part 5): do error-map statistics lift the finding heads?

Data and protocol are those of the bundled demo heads (`scripts/train_demo_heads.py`): 1,000
SynthMSK radiographs of 384 px, seed 8080, half with findings, encoded as DICOM and decoded by
the ingest pipeline; SynthMSK generator version 1 (what the bundled heads were trained on;
`--synth-version 2` for the current generator). For every image the runtime of the demo
package computes, from the decoded pixels the app analyses (`model_pixels`):

- the whole-image embedding (`runtime.embed(model_input(...))`, as the bundled heads);
- the model-space error map (`MaeRuntime.error_map`), its hotspots with the package's
  calibrated `hotspot_threshold` and its anomaly score, exactly as `MaeRuntime.analyse` does
  (checked against `analyse` on the first images);
- the embedding of the top hotspot's crop (`region_guided.plan_regions(k=1)`, the crop the app
  classifies, preprocessed like a whole image); no hotspot: the whole image.

Feature sets (the map statistics are `map_features`, named by `MAP_FEATURES`):
  emb       the 192-d embedding (today's heads)
  map       16 error-map statistics: inside the app's foreground mean, std, p90, p99, p99.9,
            the anomaly score; hotspots: log(1 + count), their total area / foreground area,
            the top hotspot's peak error, mean error, robust z (its score) and area share
            (0 without a hotspot); the top crop (as above, full-resolution map): mean, p99,
            max, mean / foreground mean
  emb+map   both, concatenated
  emb+crop  the embedding and the top crop's embedding (384-d)
  all       emb + crop + map
Controls, outside the decision rule: `pix`, 9 grey-level statistics of the image itself
(model input inside the foreground: mean, std, p90, p99, p99.9; the full-resolution pixels in
the top hotspot's crop, scaled by the image's min and max: mean, p99, max, mean / foreground
mean) and `emb+pix`: do the map's statistics carry more than the image's brightness?

Each set is standardised on the training part and trained with the application's trainer
(`core/training/head_fit.py`), for abnormal, fracture, implant, tumour_category (one-vs-rest
macro AUROC) on every image and kl_grade on knee images, with the app's folds (5-fold
patient-grouped stratified, seed 0). Two protocols, the same for every feature set:
  app      L2 1e-2, as `skelex-desktop train` and the bundled heads (reproduces their figure);
  search   L2 chosen per outer fold from L2_GRID by a 3-fold patient-grouped inner CV on the
           training part (pooled inner out-of-fold AUROC), then fitted on the training part.
AUROC of the pooled out-of-fold predictions (as the app reports it); 95 % interval: 2,000
patient-level bootstrap resamples (percentiles), and the same resamples for the paired
difference to `emb`.

Decision rule (fixed before the first run): a feature set is kept only if, under the `search`
protocol, the lower end of its paired 95 % interval of AUROC(set) - AUROC(emb) is above 0 for at
least one finding head (fracture, implant, tumour_category) and its upper end is above 0 for
every finding head (it harms none beyond noise), and the `app` protocol agrees on the lifted
head(s).

Usage: python bench/heads_from_map.py [--n 1000] [--size 384] [--seed 8080] [--synth-version 1]
       [--cache FILE.npz] [--bootstrap 2000] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("abnormal", "fracture", "implant", "tumour_category", "kl_grade")
FINDINGS = ("fracture", "implant", "tumour_category")
SETS = ("emb", "map", "emb+map", "emb+crop", "all")
CONTROLS = ("pix", "emb+pix")  # grey levels instead of the map: outside the decision rule
L2_GRID = (1e-2, 1e-1, 1.0, 10.0, 100.0)
INNER_FOLDS = 3
FEATURES_VERSION = 2  # part of the cache's tag: bump when a feature changes


def log(message: str) -> None:
    print(message, flush=True)


def demo_script() -> Any:
    """scripts/train_demo_heads.py as a module (its dataset and task helpers)."""
    spec = importlib.util.spec_from_file_location(
        "train_demo_heads", ROOT / "scripts" / "train_demo_heads.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAP_FEATURES = (
    "fg_mean",  # error inside the app's foreground: mean, std, percentiles 90 / 99 / 99.9
    "fg_std",
    "fg_p90",
    "fg_p99",
    "fg_p999",
    "anomaly_score",  # the image's analysis score
    "log1p_hotspots",  # log(1 + number of hotspots)
    "hotspot_area_share",  # their total area / foreground area
    "top_peak",  # the top hotspot: peak error, mean error, robust z (its score), area share
    "top_mean",
    "top_z",
    "top_area_share",
    "crop_mean",  # the full-resolution map in the top hotspot's crop: mean, p99, max,
    "crop_p99",
    "crop_max",
    "crop_mean_ratio",  # and its mean / the foreground mean
)


def map_features(
    model_map: np.ndarray,
    foreground: np.ndarray,
    spots: Sequence[Any],
    score: float,
    full_map: np.ndarray,
    crop: tuple[int, int, int, int],
) -> np.ndarray:
    """The `MAP_FEATURES` vector [16] of one image: `model_map` [S, S] and its bool
    `foreground`, the model-space hotspots best first (`find_hotspots`), the anomaly `score`,
    the full-resolution map and the top hotspot's crop box (x0, y0, x1, y1) in it (the whole
    image when there is no hotspot). Without a hotspot the four top-hotspot values are 0."""
    fg = foreground if foreground.any() else np.ones_like(foreground, bool)
    inside = np.asarray(model_map, np.float64)[fg]
    fg_area = float(fg.sum())
    top = spots[0] if spots else None
    x0, y0, x1, y1 = crop
    region = np.asarray(full_map, np.float64)[y0:y1, x0:x1]
    if region.size == 0:
        raise ValueError(f"empty crop {crop} of a map of shape {np.shape(full_map)}")
    values = [
        inside.mean(),
        inside.std(),
        np.percentile(inside, 90),
        np.percentile(inside, 99),
        np.percentile(inside, 99.9),
        score,
        np.log1p(len(spots)),
        sum(s.area for s in spots) / fg_area,
        top.peak_error if top else 0.0,
        top.mean_error if top else 0.0,
        top.score if top else 0.0,
        top.area / fg_area if top else 0.0,
        region.mean(),
        np.percentile(region, 99),
        region.max(),
        region.mean() / max(inside.mean(), 1e-12),
    ]
    return np.array(values, np.float64)


def map_statistics(runtime: Any, pixels: np.ndarray) -> tuple[np.ndarray, list[Any], Any]:
    """(the `map_features` vector [16], full-resolution hotspots, the analysis score) of one image,
    from the runtime's own error map, hotspots and score (as `MaeRuntime.analyse`)."""
    from skelex_desktop.core.heads.region_guided import plan_regions
    from skelex_desktop.core.inference.hotspots import (
        DEFAULT_Z,
        SCORE_PERCENTILE,
        anomaly_score,
        find_hotspots,
        scale_hotspots,
    )

    emap = runtime.error_map(pixels)
    settings = runtime.manifest.errormap
    threshold = settings.get("hotspot_threshold")
    spots = find_hotspots(
        emap.model_map,
        emap.foreground,
        z_threshold=float(settings.get("hotspot_z", DEFAULT_Z)),
        threshold=float(threshold) if threshold is not None else None,
    )
    score = anomaly_score(
        emap.model_map, emap.foreground, float(settings.get("score_percentile", SCORE_PERCENTILE))
    )
    full_spots = scale_hotspots(spots, emap.geometry.to_source, emap.geometry.source_shape)
    full = emap.full_resolution()
    crop = plan_regions(full.shape[:2], full_spots[:1], k=1)[-1].box
    vector = map_features(emap.model_map, emap.foreground, spots, score, full, crop)
    return vector, full_spots, (score, spots)


def pixel_statistics(
    runtime: Any, pixels: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray:
    """The `pix` control (9 values): grey-level statistics of the model input inside the app's
    foreground and of the full-resolution pixels in the top crop `box` (scaled by the image's
    min and max, so brightness is kept), no error map involved."""
    from skelex_desktop.core.inference.errormap import foreground_mask
    from skelex_desktop.core.inference.preprocess import to_model_u8

    rgb, geometry = to_model_u8(pixels, runtime.manifest.preprocessing)
    fg = foreground_mask(rgb, geometry)
    fg = fg if fg.any() else np.ones_like(fg)
    inside = rgb[..., 0][fg].astype(np.float64) / 255.0
    gray = np.asarray(pixels, np.float64)
    gray = gray.mean(axis=2) if gray.ndim == 3 else gray
    lo, hi = float(gray.min()), float(gray.max())
    x0, y0, x1, y1 = box
    crop = (gray[y0:y1, x0:x1] - lo) / max(hi - lo, 1e-12)
    values = [
        inside.mean(),
        inside.std(),
        np.percentile(inside, 90),
        np.percentile(inside, 99),
        np.percentile(inside, 99.9),
        crop.mean(),
        np.percentile(crop, 99),
        crop.max(),
        crop.mean() / max(inside.mean(), 1e-12),
    ]
    return np.array(values, np.float64)


def synth_features(
    n: int, seed: int, size: int, version: int, threads: int, package: str = "skelex-demo"
) -> dict[str, np.ndarray]:
    """Embeddings, crop embeddings, map statistics and ground truth of `n` SynthMSK images,
    rendered and decoded as `scripts/train_demo_heads.py` does (generator `version`)."""
    from skelex_desktop.core.heads.region_guided import plan_regions, region_inputs
    from skelex_desktop.core.inference.embeddings import model_input
    from skelex_desktop.core.inference.service import ErrorMapService
    from skelex_desktop.core.ingest.dicom_source import decode_frame, parse_dicom
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.synth.dataset import RenderedItem, SynthConfig, make_plan
    from skelex_desktop.core.synth.demographics import make_patient, make_study
    from skelex_desktop.core.synth.dicom_io import encode, instance_uids
    from skelex_desktop.core.synth.image import generate_image

    cfg = SynthConfig(n=n, seed=seed, size=size, abnormal_fraction=0.5)
    rows: list[dict[str, Any]] = []
    whole: list[np.ndarray] = []
    crops: list[np.ndarray] = []
    stats: list[np.ndarray] = []
    pix: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), reader="demo", inference_threads=threads)
        runtime = ErrorMapService(settings, package).runtime
        start = time.monotonic()
        for item in make_plan(cfg):
            img = generate_image(
                cfg.seed,
                item.index,
                size=cfg.size,
                region=item.region,
                view=item.view,
                laterality=item.laterality,
                abnormal=item.abnormal,
                version=version,
            )
            patient = make_patient(cfg.seed, item.patient_k)
            study = make_study(cfg.seed, item.patient_k, item.study_k, item.first_day)
            uids = instance_uids(cfg.seed, item.index, study.study_uid, item.series_number)
            rendered = RenderedItem(img, patient, study, *uids)
            frame = decode_frame(parse_dicom(encode(rendered.dicom(item))), 0)
            pixels = frame.model_pixels
            vector, full_spots, (score, spots) = map_statistics(runtime, pixels)
            if len(rows) < 3:  # parity with the app's own analysis of the same pixels
                app = runtime.analyse(pixels)
                if app.score != score or [h.to_json() for h in app.hotspots] != [
                    h.to_json() for h in full_spots
                ]:
                    raise RuntimeError("map statistics differ from MaeRuntime.analyse")
            regions = plan_regions(np.shape(pixels)[:2], full_spots[:1], k=1)
            inputs = region_inputs(pixels, [regions[0], regions[-1]], runtime.manifest)
            if not np.array_equal(inputs[0], model_input(pixels, runtime.manifest)):
                raise RuntimeError("the whole-image region is not the embedding's model input")
            w, c = runtime.embed(inputs)
            whole.append(w)
            crops.append(c)
            stats.append(vector)
            pix.append(pixel_statistics(runtime, pixels, regions[-1].box))
            lab = img.labels
            rows.append(
                {
                    "abnormal": str(lab["abnormal"]),
                    "fracture": str(lab["fracture"]),
                    "implant": str(lab["implant"]),
                    "tumour_category": str(lab["tumour_category"]),
                    "kl_grade": "" if lab["kl_grade"] is None else str(lab["kl_grade"]),
                    "patient": patient.patient_id,
                    "body_part": str(img.meta["body_part"]).upper(),
                    "region": str(img.meta["region"]),
                    "hotspots": str(len(spots)),
                }
            )
            if len(rows) % 50 == 0:
                log(f"  {len(rows)}/{n} images ({time.monotonic() - start:.0f} s)")
    out = {key: np.array([r[key] for r in rows], dtype=str) for key in rows[0]}
    out["x"] = np.stack(whole).astype(np.float32)
    out["crop"] = np.stack(crops).astype(np.float32)
    out["map"] = np.stack(stats)
    out["pix"] = np.stack(pix)
    return out


def load_or_compute(args: argparse.Namespace) -> dict[str, np.ndarray]:
    tag = f"{args.n}/{args.seed}/{args.size}/v{args.synth_version}/{FEATURES_VERSION}"
    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache, allow_pickle=False) as data:
            found = {k: data[k] for k in data.files}
        if found.get("settings", np.array("")).item() == tag:
            log(f"features read from {args.cache}")
            return {k: v for k, v in found.items() if k != "settings"}
    data = synth_features(args.n, args.seed, args.size, args.synth_version, args.threads)
    if args.cache is not None:
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.cache, settings=np.array(tag), **data)
    return data


def feature_set(data: dict[str, np.ndarray], name: str) -> np.ndarray:
    parts = {"emb": [data["x"]], "map": [data["map"]], "emb+map": [data["x"], data["map"]]}
    parts["emb+crop"] = [data["x"], data["crop"]]
    parts["all"] = [data["x"], data["crop"], data["map"]]
    parts["pix"] = [data["pix"]]
    parts["emb+pix"] = [data["x"], data["pix"]]
    return np.hstack(parts[name]).astype(np.float64)


def task_auroc(kind: str, y: np.ndarray, logits: np.ndarray) -> float:
    """The app's AUROC of [N, C] logits (binary: positive class; else one-vs-rest macro over
    the classes present with both outcomes), with the rank AUROC of `core/stats.py`."""
    from skelex_desktop.core.heads.metrics import softmax
    from skelex_desktop.core.stats import auroc

    probs = softmax(logits)
    if probs.shape[1] == 2:
        return auroc(probs[:, 1], y == 1)
    values = [auroc(probs[:, c], y == c) for c in range(probs.shape[1])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def search_oof(
    dataset: Any, folds: np.ndarray, seed: int, threads: int
) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold logits with L2 chosen per outer fold by an inner grouped CV."""
    from skelex_desktop.core.heads.splits import grouped_stratified_folds
    from skelex_desktop.core.training.head_fit import HeadConfig, fit_heads

    task = dataset.tasks[0]
    y = dataset.y
    oof = np.full((len(y), len(task.classes)), np.nan)
    chosen = []
    for fold in range(int(folds.max()) + 1):
        held = folds == fold
        x_tr, y_tr, g_tr = dataset.x[~held], y[~held], dataset.groups[~held]
        inner = grouped_stratified_folds(y_tr[:, 0], g_tr, INNER_FOLDS, seed)
        best, best_auc = L2_GRID[0], -np.inf
        for l2 in L2_GRID:
            config = HeadConfig(l2=l2, seed=seed, threads=threads)
            logits = np.full((len(y_tr), len(task.classes)), np.nan)
            for k in range(INNER_FOLDS):
                part = inner == k
                model = fit_heads(x_tr[~part], y_tr[~part], [task], config)
                logits[part] = model.logits(x_tr[part])[task.name]
            auc = task_auroc(task.kind, y_tr[:, 0], logits)
            if auc > best_auc:
                best, best_auc = l2, auc
        model = fit_heads(x_tr, y_tr, [task], HeadConfig(l2=best, seed=seed, threads=threads))
        oof[held] = model.logits(dataset.x[held])[task.name]
        chosen.append(best)
    return oof, chosen


def bootstrap(
    kind: str, y: np.ndarray, groups: np.ndarray, logits: dict[str, np.ndarray], b: int, seed: int
) -> dict[str, np.ndarray]:
    """AUROC of every set on `b` patient-level resamples (the same resamples for all sets)."""
    names, index = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(index == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)
    out = {name: np.empty(b) for name in logits}
    for i in range(b):
        pick = np.concatenate([members[g] for g in rng.integers(0, len(names), len(names))])
        for name, lg in logits.items():
            out[name][i] = task_auroc(kind, y[pick], lg[pick])
    return out


def interval(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    return [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]


def evaluate(data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    """Per task and protocol: AUROC, 95 % interval and paired difference to `emb` of each set."""
    from skelex_desktop.core.training.head_fit import HeadConfig, cross_validate

    script = demo_script()
    specs = script.task_specs()
    results: dict[str, Any] = {}
    for task in TASKS:
        spec = specs[task]
        logits: dict[str, dict[str, np.ndarray]] = {"app": {}, "search": {}}
        chosen: dict[str, list[float]] = {}
        dataset = None
        for name in SETS + CONTROLS:
            dataset = script.task_dataset(data | {"x": feature_set(data, name)}, spec)
            t0 = time.monotonic()
            cv = cross_validate(
                dataset, args.folds, HeadConfig(seed=args.train_seed, threads=args.threads)
            )
            logits["app"][name] = cv.oof_logits[task]
            logits["search"][name], chosen[name] = search_oof(
                dataset, cv.folds, args.train_seed, args.threads
            )
            app_auc = cv.metrics[task]["auroc"]
            log(
                f"{task:<16} {name:<9} app AUROC {app_auc:.3f}  search AUROC "
                f"{task_auroc(spec.kind, dataset.y[:, 0], logits['search'][name]):.3f} "
                f"(L2 {chosen[name]})  {time.monotonic() - t0:.0f} s"
            )
        assert dataset is not None
        y, groups = dataset.y[:, 0], dataset.groups
        task_result: dict[str, Any] = {
            "images": int(len(y)),
            "patients": int(len(set(groups.tolist()))),
        }
        for protocol, by_set in logits.items():
            boot = bootstrap(spec.kind, y, groups, by_set, args.bootstrap, args.boot_seed)
            rows = {}
            for name, lg in by_set.items():
                row: dict[str, Any] = {
                    "auroc": task_auroc(spec.kind, y, lg),
                    "ci": interval(boot[name]),
                }
                if name != "emb":
                    row["delta"] = row["auroc"] - task_auroc(spec.kind, y, by_set["emb"])
                    row["delta_ci"] = interval(boot[name] - boot["emb"])
                if protocol == "search":
                    row["l2"] = chosen[name]
                rows[name] = row
            task_result[protocol] = rows
        results[task] = task_result
    return results


def decide(results: dict[str, Any]) -> dict[str, Any]:
    """The decision rule of the module docstring, per feature set."""
    out = {}
    for name in SETS[1:]:
        lifted = [t for t in FINDINGS if results[t]["search"][name]["delta_ci"][0] > 0]
        harmed = [t for t in FINDINGS if results[t]["search"][name]["delta_ci"][1] < 0]
        agree = all(results[t]["app"][name]["delta_ci"][0] > 0 for t in lifted)
        out[name] = {
            "lifted": lifted,
            "harmed": harmed,
            "app_agrees": agree,
            "keep": bool(lifted) and not harmed and agree,
        }
    return out


def table(results: dict[str, Any], protocol: str) -> str:
    lines = [
        f"| task ({protocol}) | " + " | ".join(SETS + CONTROLS) + " |",
        "|---" * (len(SETS) + len(CONTROLS) + 1) + "|",
    ]
    for task, r in results.items():
        cells = []
        for name in SETS + CONTROLS:
            row = r[protocol][name]
            cell = f"{row['auroc']:.3f} [{row['ci'][0]:.2f}, {row['ci'][1]:.2f}]"
            if "delta" in row:
                cell += f"; Δ {row['delta']:+.3f} [{row['delta_ci'][0]:+.2f}, {row['delta_ci'][1]:+.2f}]"
            cells.append(cell)
        lines.append(
            f"| {task} ({r['images']} img, {r['patients']} pat) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=8080, help="SynthMSK seed")
    parser.add_argument("--synth-version", type=int, default=1)
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--boot-seed", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="features .npz to reuse")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--features-only", action="store_true", help="compute the cache, stop")
    args = parser.parse_args(argv)
    os.environ.setdefault("SKELEX_BUNDLED_MODELS", str(ROOT / "models"))

    start = time.monotonic()
    data = load_or_compute(args)
    hot = data["hotspots"].astype(int)
    log(
        f"{len(data['x'])} images in {time.monotonic() - start:.0f} s; images with a hotspot "
        f"{(hot > 0).mean():.2f}, median hotspots {np.median(hot):.0f}"
    )
    if args.features_only:
        return 0
    results = evaluate(data, args)
    decision = decide(results)
    for protocol in ("app", "search"):
        log("")
        log(table(results, protocol))
    log("")
    for name, d in decision.items():
        log(f"{name}: {d}")
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "decision": decision}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
