"""Benchmark: labels needed by active learning vs a random order (issue 8).

SynthMSK radiographs are embedded by the demo model (`scripts/train_demo_heads.py`'s
`synth_embeddings`, cached with --cache). Patients are split into a labelling pool (70 %) and a
held-out test set (30 %). Both orders start from the same few random labels (at least one per
class); then, every `--step` labels:

- active: the head trained on the labels so far scores the unlabelled pool and the next
  `--step` images are the first of `core.heads.active.informative_order` (entropy, diversity
  0.5, k-center distance to the labelled embeddings);
- random: the next images of a seeded permutation.

After every step a head (`core.training.head_fit.fit_heads`, the application's trainer) is fitted
and its test AUROC recorded. "Labels needed" is the first budget whose AUROC reaches 95 % of the
AUROC of a head trained on the whole pool (the pool size when never reached). Tasks: fracture
(binary), tumour (binary: malignant or intermediate vs benign or none) and implant (binary).
Prints, per task, the mean over seeds and the ratio active / random (target <= 0.60), and saves
the label efficiency curves (mean, min-max band over seeds) as docs/active_learning_<task>.png.
The ratio only means something when the full-pool head is informative: a task whose mean
full-pool AUROC is below `INFORMATIVE_AUROC` (the review's bar for accepting a head's
suggestions) is flagged, since "95 % of a near-chance AUROC" is reached by noise.

Control tasks (`--controls`, default ankle): "this body region vs all others". The demo
embeddings do encode the body region, so these show what the active order does when the
embeddings carry the signal; ankle (16 % of images, easily confused with the foot) is the
least trivial of the regions.

Usage: python bench/active_learning.py [--n 1000] [--seeds 3] [--step 10]
       [--cache /tmp/al_embeddings.npz] [--out docs] [--controls ankle,foot]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.60
FRACTION = 0.95
INFORMATIVE_AUROC = 0.70  # = core.review.MIN_CONFIRM_AUROC


def _demo_script() -> Any:
    """scripts/train_demo_heads.py as a module (its embedding and caching helpers)."""
    spec = importlib.util.spec_from_file_location(
        "train_demo_heads", ROOT / "scripts" / "train_demo_heads.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def task_labels(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Binary labels per benchmark task."""
    tumour = np.isin(data["tumour_category"], ["malignant", "intermediate"])
    return {
        "fracture": (data["fracture"] == "1").astype(np.int64),
        "tumour": tumour.astype(np.int64),
        "implant": (data["implant"] == "1").astype(np.int64),
    }


def control_labels(data: dict[str, np.ndarray], regions: list[str]) -> dict[str, np.ndarray]:
    """Binary "region vs the rest" labels of the control tasks, named `control_<region>`."""
    known = set(data["region"].tolist())
    unknown = [r for r in regions if r not in known]
    if unknown:
        raise SystemExit(f"unknown control region(s) {unknown}; known: {sorted(known)}")
    return {f"control_{r}": (data["region"] == r).astype(np.int64) for r in regions}


def patient_split(
    groups: np.ndarray, seed: int, test_fraction: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the pool and of the test set; every patient in one of them."""
    patients = np.unique(groups)
    rng = np.random.default_rng(seed)
    test_patients = rng.permutation(patients)[: int(round(test_fraction * len(patients)))]
    test = np.isin(groups, test_patients)
    return np.flatnonzero(~test), np.flatnonzero(test)


def fit(x: np.ndarray, y: np.ndarray, train: np.ndarray, config: Any) -> Any:
    """A binary head (`core.training.head_fit.fit_heads`) on the images `train`."""
    from skelex_desktop.core.heads.training_set import TaskSpec
    from skelex_desktop.core.training.head_fit import fit_heads

    return fit_heads(x[train], y[train, None], [TaskSpec("task", "binary", ["no", "yes"])], config)


def test_auroc(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, config: Any
) -> float:
    """Test AUROC of a head fitted on `train`."""
    from skelex_desktop.core.heads.metrics import auroc

    probs = fit(x, y, train, config).probabilities(x[test])["task"]
    return float(auroc(y[test], probs[:, 1]) or 0.5)


def start_set(y: np.ndarray, pool: np.ndarray, rng: np.random.Generator, size: int) -> list[int]:
    """`size` random pool images including at least one of each class."""
    order = rng.permutation(pool)
    first = [int(order[np.flatnonzero(y[order] == c)[0]]) for c in (0, 1)]
    rest = [int(i) for i in order if i not in first]
    return first + rest[: max(0, size - 2)]


def run_order(
    x: np.ndarray,
    y: np.ndarray,
    pool: np.ndarray,
    test: np.ndarray,
    start: list[int],
    budgets: list[int],
    mode: str,
    rng: np.random.Generator,
    step: int,
    config: Any,
) -> list[float]:
    """Test AUROC at each budget while labelling in `mode` ("active" or "random") order."""
    from skelex_desktop.core.heads.active import informative_order

    labelled = list(start)
    first = set(start)
    remaining = [int(i) for i in rng.permutation(pool) if int(i) not in first]
    curve = []
    for budget in budgets:
        while len(labelled) < budget and remaining:
            take = min(step, budget - len(labelled), len(remaining))
            if mode == "random" or len(set(y[labelled].tolist())) < 2:
                picked = remaining[:take]
            else:
                head = fit(x, y, np.array(labelled), config)
                candidates = np.array(remaining)
                probs = head.probabilities(x[candidates])["task"]
                order = informative_order(
                    probs, x[candidates], labelled=x[labelled], diversity=0.5, limit=take
                )
                picked = [int(candidates[k]) for k in order[:take]]
            labelled += picked
            chosen = set(picked)
            remaining = [i for i in remaining if i not in chosen]
        curve.append(test_auroc(x, y, np.array(labelled), test, config))
    return curve


def labels_needed(curve: list[float], budgets: list[int], target: float) -> int:
    """The first budget whose AUROC reaches `target` (the last budget if none does)."""
    return next((b for b, a in zip(budgets, curve, strict=True) if a >= target), budgets[-1])


def benchmark(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    seeds: int,
    step: int,
    start_size: int,
    threads: int,
) -> dict[str, Any]:
    """Curves, full-pool AUROC and labels needed per seed for one task."""
    from skelex_desktop.core.training.head_fit import HeadConfig

    config = HeadConfig(threads=threads)
    runs: list[dict[str, Any]] = []
    for seed in range(seeds):
        pool, test = patient_split(groups, seed)
        full = test_auroc(x, y, pool, test, config)
        budgets = sorted(
            {*range(start_size, min(200, len(pool)), step), *range(200, len(pool), 50), len(pool)}
        )
        rng = np.random.default_rng(1000 + seed)
        start = start_set(y, pool, rng, start_size)
        curves = {
            mode: run_order(
                x,
                y,
                pool,
                test,
                start,
                budgets,
                mode,
                np.random.default_rng(2000 + seed),
                step,
                config,
            )
            for mode in ("active", "random")
        }
        target = FRACTION * full
        needed = {mode: labels_needed(c, budgets, target) for mode, c in curves.items()}
        runs.append(
            {
                "seed": seed,
                "budgets": budgets,
                "full": full,
                "target": target,
                "curves": curves,
                "needed": needed,
                "pool": len(pool),
                "positives": int(y[pool].sum()),
            }
        )
        print(
            f"  seed {seed}: pool {len(pool)} ({int(y[pool].sum())} positive), full AUROC "
            f"{full:.3f}, 95 % = {target:.3f}; labels needed: active {needed['active']}, "
            f"random {needed['random']}",
            flush=True,
        )
    return {"runs": runs}


def curve_plot(task: str, result: dict[str, Any], path: Path) -> Path:
    """Mean AUROC vs labels (min-max band over seeds) of both orders, and the 95 % target."""
    from skelex_desktop.core.heads.plots import CHANCE, PALETTE, new_figure, save_png

    runs = result["runs"]
    budgets = np.array(min((r["budgets"] for r in runs), key=len), float)
    n = len(budgets)
    lows = [min(min(r["curves"][m][:n]) for r in runs) for m in ("active", "random")]
    highs = [max(max(r["curves"][m][:n]) for r in runs) for m in ("active", "random")]
    top = max(max(highs), max(r["full"] for r in runs))
    figure, ax = new_figure(
        f"Label efficiency - {task} (SynthMSK, {len(runs)} seeds)",
        "number of labels",
        "test AUROC",
        xlim=(0.0, float(budgets[-1])),
        ylim=(max(0.0, np.floor(min(lows) * 20) / 20), min(1.0, np.ceil(top * 20) / 20)),
    )
    for k, mode in enumerate(("active", "random")):
        curves = np.array([r["curves"][mode][:n] for r in runs])
        needed = np.mean([r["needed"][mode] for r in runs])
        ax.fill_between(
            budgets, curves.min(axis=0), curves.max(axis=0), color=PALETTE[k], alpha=0.18, lw=0
        )
        ax.plot(
            budgets,
            curves.mean(axis=0),
            color=PALETTE[k],
            linewidth=2,
            label=f"{mode} order (95 % reached at {needed:.0f} labels)",
        )
    target = float(np.mean([r["target"] for r in runs]))
    ax.axhline(
        target,
        color=CHANCE,
        linewidth=1,
        linestyle="--",
        label=f"95 % of full-pool AUROC ({target:.3f})",
    )
    ax.legend(loc="lower right", fontsize=8)
    return save_png(path, figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=8080, help="SynthMSK seed")
    parser.add_argument("--seeds", type=int, default=3, help="splits / start sets / orders")
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--start", type=int, default=10, help="random labels to start from")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="embeddings .npz to reuse")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument(
        "--controls",
        default="ankle",
        help="comma-separated body regions for control tasks (region vs the rest); '' for none",
    )
    args = parser.parse_args(argv)

    begin = time.monotonic()
    data = _demo_script().load_or_embed(args.cache, args.n, args.seed, args.size, args.threads)
    x = data["x"].astype(np.float64)
    print(f"{len(x)} SynthMSK embeddings ({time.monotonic() - begin:.0f} s)", flush=True)
    ratios = {}
    controls = control_labels(data, [r for r in args.controls.split(",") if r])
    for task, y in {**task_labels(data), **controls}.items():
        print(f"{task}:", flush=True)
        result = benchmark(x, y, data["patient"], args.seeds, args.step, args.start, args.threads)
        active = float(np.mean([r["needed"]["active"] for r in result["runs"]]))
        random = float(np.mean([r["needed"]["random"] for r in result["runs"]]))
        ratios[task] = active / random
        path = curve_plot(task, result, args.out / f"active_learning_{task}.png")
        verdict = "meets" if ratios[task] <= TARGET_RATIO else "misses"
        full = float(np.mean([r["full"] for r in result["runs"]]))
        note = (
            f"; uninformative head: full-pool AUROC {full:.2f} < {INFORMATIVE_AUROC:.2f}"
            if full < INFORMATIVE_AUROC
            else ""
        )
        if task in controls:
            note += "; control task: the embeddings encode the body region"
        print(
            f"{task}: labels to reach 95 % of full-label AUROC, mean of {args.seeds} seeds: "
            f"active {active:.0f}, random {random:.0f}, ratio {ratios[task]:.2f} "
            f"({verdict} the {TARGET_RATIO:.2f} target{note}); curves: {path}",
            flush=True,
        )
    print(f"done in {time.monotonic() - begin:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
