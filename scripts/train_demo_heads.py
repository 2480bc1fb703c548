"""Train the task heads bundled with the demo package `models/skelex-demo`, reproducibly.

1. Render seeded SynthMSK radiographs (`make_plan` + `generate_image`: patients with several
   studies, half of the images with findings), encode each as the DICOM file the app would
   import and decode it again with the ingest pipeline, so the pixels are exactly the ones the
   app embeds.
2. Embed them with the demo package (`ErrorMapService(settings, "skelex-demo").runtime.embed`,
   model input = `core.embeddings.model_input`).
3. Train one head per task with the application's trainer (`core.training.heads.train_heads`:
   patient-grouped stratified 5-fold CV, temperature from out-of-fold logits, final fit on all
   labels): fracture, implant, tumour_category, abnormal on every image, kl_grade on knee
   images only.
4. Write `heads/<task>.npz` (HeadWeights format) into the package, the CV metrics into
   MODEL_CARD.md ("Task heads") and the files (sha256, bytes) into manifest.json (`files`
   and a `heads` section), then verify the whole package.

Usage: python scripts/train_demo_heads.py [--n 1000] [--size 384] [--seed 8080]
       [--package models/skelex-demo] [--cache embeddings.npz] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("abnormal", "fracture", "implant", "tumour_category", "kl_grade")
KNEE_ONLY = {"kl_grade": ("KNEE",)}
SECTION = "## Task heads"


def log(message: str) -> None:
    print(message, flush=True)


def synth_embeddings(
    n: int, seed: int, size: int, package: str = "skelex-demo", threads: int = 2, batch: int = 32
) -> dict[str, np.ndarray]:
    """Embeddings and ground truth of `n` SynthMSK images: x [N, D], one label array per task
    (strings; "" where a task does not apply), patient ids, body parts, regions."""
    from skelex_desktop.core.inference.embeddings import model_input
    from skelex_desktop.core.inference.service import ErrorMapService
    from skelex_desktop.core.ingest.dicom_source import decode_frame, parse_dicom
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.synth.dataset import SynthConfig, make_plan, render_plan_item
    from skelex_desktop.core.synth.dicom_io import encode

    cfg = SynthConfig(n=n, seed=seed, size=size, abnormal_fraction=0.5)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), reader="demo", inference_threads=threads)
        runtime = ErrorMapService(settings, package).runtime
        vectors: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        rows: list[dict[str, Any]] = []
        start = time.monotonic()
        for item in make_plan(cfg):
            rendered = render_plan_item(cfg, item)
            img, patient = rendered.image, rendered.patient
            ds = rendered.dicom(item)
            frame = decode_frame(parse_dicom(encode(ds)), 0)
            pending.append(model_input(frame.model_pixels, runtime.manifest))
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
                }
            )
            if len(pending) == batch:
                vectors.extend(runtime.embed(np.stack(pending)))
                pending.clear()
                log(f"  {len(rows)}/{n} images embedded ({time.monotonic() - start:.0f} s)")
        if pending:
            vectors.extend(runtime.embed(np.stack(pending)))
    out = {key: np.array([r[key] for r in rows], dtype=str) for key in rows[0]}
    out["x"] = np.stack(vectors).astype(np.float32)
    return out


def load_or_embed(
    cache: Path | None, n: int, seed: int, size: int, threads: int
) -> dict[str, np.ndarray]:
    """`synth_embeddings`, read from / saved to `cache` (an .npz) when given and matching."""
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            found = {k: data[k] for k in data.files}
        if found.get("settings", np.array("")).item() == f"{n}/{seed}/{size}":
            log(f"embeddings read from {cache}")
            return {k: v for k, v in found.items() if k != "settings"}
    data = synth_embeddings(n, seed, size, threads=threads)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, settings=np.array(f"{n}/{seed}/{size}"), **data)
    return data


def task_specs() -> dict[str, Any]:
    """TaskSpec of every task in the label schema, by name."""
    from skelex_desktop.core.heads.training_set import TaskSpec
    from skelex_desktop.core.resources import resources_dir

    schema = json.loads((resources_dir() / "label_schema.json").read_text(encoding="utf-8"))
    return {
        t["name"]: TaskSpec(t["name"], t["kind"], [str(c) for c in t["classes"]])
        for t in schema["tasks"]
    }


def task_dataset(data: dict[str, np.ndarray], spec: Any) -> Any:
    """The HeadDataset of one task: images where it applies, labels as class indices."""
    from skelex_desktop.core.heads.training_set import HeadDataset

    values = data[spec.name]
    keep = values != ""
    if spec.name in KNEE_ONLY:
        keep &= np.isin(data["body_part"], KNEE_ONLY[spec.name])
    index = {c: i for i, c in enumerate(spec.classes)}
    if spec.kind == "binary":
        index = {"0": 0, "1": 1}
    y = np.array([index[v] for v in values[keep]], np.int64)[:, None]
    counts = {
        spec.name: {
            "labelled": int(keep.sum()),
            "uncertain": 0,
            "without_embedding": 0,
            "per_class": {c: int((y[:, 0] == i).sum()) for i, c in enumerate(spec.classes)},
        }
    }
    return HeadDataset(
        tasks=[spec],
        x=data["x"][keep],
        y=y,
        groups=data["patient"][keep],
        image_ids=np.flatnonzero(keep).astype(np.int64),
        counts=counts,
    )


def train_task(
    data: dict[str, np.ndarray], spec: Any, folds: int, seed: int, threads: int
) -> tuple[Any, dict[str, Any], Any]:
    """(weights, CV metrics, dataset) of one task, trained like `skelex-desktop train`."""
    from skelex_desktop.core.training.head_fit import HeadConfig, train_heads

    dataset = task_dataset(data, spec)
    model, cv = train_heads(dataset, folds, HeadConfig(seed=seed, threads=threads))
    metrics = {k: v for k, v in cv.metrics[spec.name].items() if v is not None}
    metrics["per_class"] = dataset.counts[spec.name]["per_class"]
    metrics["patients"] = int(len(set(dataset.groups.tolist())))
    return model, metrics, dataset


def region_check(data: dict[str, np.ndarray], folds: int, seed: int, threads: int) -> float:
    """CV AUROC of "knee vs rest" from the same embeddings with the same trainer: shows that
    the embeddings and labels line up (the region is what a tiny MAE's embedding encodes)."""
    from skelex_desktop.core.heads.training_set import TaskSpec

    knee = np.where(data["region"] == "knee", "1", "0")
    spec = TaskSpec("knee", "binary", ["other", "knee"])
    _, metrics, _ = train_task(data | {"knee": knee}, spec, folds, seed, threads)
    return float(metrics["auroc"])


def card_section(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    """The "Task heads" section of the model card."""

    def cell(metrics: dict[str, Any], key: str) -> str:
        value = metrics.get(key)
        return "-" if value is None else f"{value:.3f}"

    aurocs = [r["metrics"]["auroc"] for r in results.values() if "auroc" in r["metrics"]]
    lo, hi = min(aurocs), max(aurocs)
    verdict = (
        "at or near chance level" if hi < 0.6 else "weak" if hi < 0.75 else "better than chance"
    )
    lines = [
        SECTION,
        "",
        "Linear heads on the frozen 192-d embeddings, shipped in `heads/<task>.npz` and applied",
        "to every analysed image (ModelVersion `skelex-demo-heads`), so the demo studies show",
        "suggestions from the first launch. A head the user trains for a task replaces the",
        "bundled one for that task.",
        "",
        f"Reproducible: `python scripts/train_demo_heads.py --n {args.n} --size {args.size} "
        f"--seed {args.seed}`.",
        f"Data: {args.n} SynthMSK radiographs of {args.size} px (seed {args.seed}, half with "
        "findings), encoded as DICOM",
        "and decoded by the ingest pipeline, embedded by this package. Trainer: the application's",
        f"(`core/training/head_fit.py`, L2 1e-2, L-BFGS), {args.folds}-fold patient-grouped "
        "stratified CV; the",
        "temperature is fitted on the out-of-fold logits, the final head on all images.",
        "",
        "| task | kind | images (patients) | AUROC | balanced accuracy | macro F1 | MAE "
        "| ECE before / after T | T |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, r in results.items():
        m = r["metrics"]
        lines.append(
            f"| {task} | {r['kind']} | {r['images']} ({m['patients']}) | {cell(m, 'auroc')} "
            f"| {cell(m, 'balanced_accuracy')} | {cell(m, 'f1_macro')} | {cell(m, 'mae')} "
            f"| {cell(m, 'ece')} / {cell(m, 'ece_calibrated')} | {cell(m, 'temperature')} |"
        )
    lines += [
        "",
        "Cross-validated on synthetic images only (kl_grade: knee images only; tumour_category:",
        "one-vs-rest macro AUROC over malignant / intermediate / benign / none).",
        f"**The heads are {verdict}** (AUROC {lo:.2f}-{hi:.2f}): the embeddings come from a "
        "tiny MAE",
        "pretrained on a CPU only (see Training recipe), whose mean-pooled tokens encode the body region "
        f"(knee vs rest: CV AUROC {args.region_auroc:.3f}",
        "with the same trainer) but hardly the findings. The bundled heads demonstrate the "
        "workflow",
        "(suggestions with calibrated probabilities, replaced by the user's own heads); they "
        "carry no",
        "diagnostic value and say nothing about real radiographs.",
        "",
    ]
    return "\n".join(lines)


def replace_section(card: str, section: str) -> str:
    """`card` with its "Task heads" section replaced (or inserted before the licence)."""
    section = section.rstrip("\n") + "\n\n"
    start = card.find(SECTION)
    if start >= 0:
        end = card.find("\n## ", start + len(SECTION))
        return card[:start] + section + ("" if end < 0 else card[end + 1 :])
    anchor = card.find("## Licence")
    if anchor < 0:
        return card.rstrip("\n") + "\n\n" + section
    return card[:anchor] + section + card[anchor:]


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_package(
    package: Path, results: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    """Head files, model card and manifest (last, so a crash leaves the old manifest)."""
    from skelex_desktop.core.inference.package import (
        embedding_identity,
        sha256_bytes,
        write_manifest,
    )

    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    (package / "heads").mkdir(exist_ok=True)
    tasks: dict[str, Any] = {}
    for task, r in results.items():
        rel = f"heads/{task}.npz"
        with tempfile.TemporaryDirectory() as tmp:
            r["weights"].save(Path(tmp) / "head.npz")
            blob = (Path(tmp) / "head.npz").read_bytes()
        write_atomic(package / rel, blob)
        sha = sha256_bytes(blob)
        manifest["files"][rel] = {"sha256": sha, "bytes": len(blob)}
        tasks[task] = {
            "file": rel,
            "sha256": sha,
            "bytes": len(blob),
            "kind": r["kind"],
            "classes": r["classes"],
            "body_parts": list(KNEE_ONLY.get(task, ())),
            "images": r["images"],
            "metrics": r["metrics"],
        }
    card_path = package / "MODEL_CARD.md"
    card = replace_section(card_path.read_text(encoding="utf-8"), card_section(results, args))
    write_atomic(card_path, card.encode("utf-8"))
    manifest["files"]["MODEL_CARD.md"] = {
        "sha256": sha256_bytes(card.encode("utf-8")),
        "bytes": len(card.encode("utf-8")),
    }
    embedding_file = manifest["graphs"]["embedding"]["file"]
    manifest["heads"] = {
        "model_version": f"{manifest['name']}-heads",
        "embedding_sha256": manifest["files"][embedding_file]["sha256"],
        "embedding_identity": embedding_identity(manifest, manifest["name"]),
        "training": {
            "script": "scripts/train_demo_heads.py",
            "synth_seed": args.seed,
            "images": args.n,
            "size": args.size,
            "folds": args.folds,
            "seed": args.train_seed,
            "l2": 1e-2,
            "abnormal_fraction": 0.5,
        },
        "tasks": tasks,
    }
    write_manifest(package, manifest)  # lists the manifest it replaces under "supersedes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=8080, help="SynthMSK seed")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--package", type=Path, default=ROOT / "models" / "skelex-demo")
    parser.add_argument("--cache", type=Path, default=None, help="embeddings .npz to reuse")
    parser.add_argument("--dry-run", action="store_true", help="train and print, write nothing")
    args = parser.parse_args(argv)
    os.environ.setdefault("SKELEX_BUNDLED_MODELS", str(args.package.resolve().parent))

    start = time.monotonic()
    data = load_or_embed(args.cache, args.n, args.seed, args.size, args.threads)
    log(f"{len(data['x'])} embeddings in {time.monotonic() - start:.0f} s")
    specs = task_specs()
    args.region_auroc = region_check(data, args.folds, args.train_seed, args.threads)
    log(f"sanity check, knee vs rest from the same embeddings: CV AUROC {args.region_auroc:.3f}")
    results: dict[str, dict[str, Any]] = {}
    for task in TASKS:
        spec = specs[task]
        model, metrics, dataset = train_task(data, spec, args.folds, args.train_seed, args.threads)
        results[task] = {
            "weights": model,
            "metrics": metrics,
            "kind": spec.kind,
            "classes": list(spec.classes),
            "images": int(len(dataset.y)),
        }
        shown = {k: round(v, 3) for k, v in metrics.items() if isinstance(v, float)}
        log(f"{task}: {len(dataset.y)} images {metrics['per_class']} {shown}")
    if args.dry_run:
        return 0
    write_package(args.package, results, args)
    from skelex_desktop.core.inference.package import verify_package

    manifest = verify_package(args.package)
    size = sum(p.stat().st_size for p in args.package.rglob("*") if p.is_file())
    log(
        f"wrote {len(results)} heads into {args.package} ({len(manifest.files)} files verified, "
        f"package {size / 1e6:.1f} MB) in {time.monotonic() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
