"""Benchmark: task-head training on frozen embeddings, 5-fold patient-grouped CV + final fit.

Target (issue 8): 1,000 embeddings, 5-fold CV in under 10 s on 2 cores. Prints each case's
time and its ratio to that target (< 1 meets it). Embeddings are synthetic (D = 192, the demo
model's width; 768 and 1024 for ViT-B/L-sized encoders) with a planted signal; torch's import
and a warm-up fit are not counted.

Usage: python bench/heads.py [--n 1000] [--folds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

TARGET_S = 10.0


def _data(n: int, d: int, tasks: list, seed: int = 0):  # noqa: ANN202 - HeadDataset
    from skelex_desktop.core.heads.training_set import MISSING, HeadDataset

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    s = x[:, :8].sum(axis=1) / np.sqrt(8) + 0.5 * rng.normal(size=n)
    columns = []
    for task in tasks:
        if task.kind == "binary":
            y = (s > 0).astype(np.int64)
        elif task.kind == "ordinal":
            y = np.digitize(s, [-1.0, -0.3, 0.3, 1.0])
            y[rng.random(n) < 0.4] = MISSING  # knee grades exist for some images only
        else:
            y = np.argmax(x[:, 8 : 8 + len(task.classes)], axis=1)
        columns.append(y)
    groups = np.array([f"P{i // 3}" for i in range(n)])
    return HeadDataset(tasks, x, np.stack(columns, axis=1), groups, np.arange(n))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    print(f"torch import {time.perf_counter() - start:.2f} s (not counted)")
    torch.set_num_threads(args.threads)
    from skelex_desktop.core.heads.training_set import TaskSpec
    from skelex_desktop.core.training.head_fit import HeadConfig, train_heads

    binary = TaskSpec("fracture", "binary", ["no fracture", "fracture"])
    multi = TaskSpec(
        "tumour_category", "multiclass", ["malignant", "intermediate", "benign", "none"]
    )
    ordinal = TaskSpec("kl_grade", "ordinal", ["0", "1", "2", "3", "4"])
    cases = [
        ("binary", 192, [binary]),
        ("multiclass", 192, [multi]),
        ("ordinal", 192, [ordinal]),
        ("multi-head x3", 192, [binary, multi, ordinal]),
        ("binary", 768, [binary]),
        ("binary", 1024, [binary]),
    ]
    config = HeadConfig(threads=args.threads)
    train_heads(_data(100, 16, [binary]), 2, config)  # warm-up: torch's first-call setup
    for label, d, tasks in cases:
        data = _data(args.n, d, tasks)
        t0 = time.perf_counter()
        _model, cv = train_heads(data, args.folds, config)
        took = time.perf_counter() - t0
        auroc = ", ".join(f"{k} {v['auroc']:.3f}" for k, v in cv.metrics.items())
        print(
            f"{label:<14} n={args.n} D={d:<5} {args.folds}-fold + final: {took:6.2f} s  "
            f"ratio to {TARGET_S:.0f} s target: {took / TARGET_S:.3f}  (AUROC {auroc})"
        )


if __name__ == "__main__":
    main()
