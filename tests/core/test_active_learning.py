"""bench/active_learning.py on planted-signal embeddings: patient split, both label orders,
labels needed and the label-efficiency plot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():  # noqa: ANN202 - the bench module
    spec = importlib.util.spec_from_file_location(
        "active_learning_bench", ROOT / "bench" / "active_learning.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_orders_split_and_plot(tmp_path: Path) -> None:
    bench = _bench()
    rng = np.random.default_rng(0)
    n = 160
    y = (rng.random(n) < 0.3).astype(np.int64)
    x = rng.normal(size=(n, 12))
    x[:, 0] += 2.0 * y
    groups = np.array([f"P{i // 2}" for i in range(n)])
    pool, test = bench.patient_split(groups, seed=0)
    assert set(groups[pool]).isdisjoint(groups[test]) and len(pool) + len(test) == n
    assert bench.labels_needed([0.5, 0.7, 0.9], [10, 20, 30], 0.69) == 20
    assert bench.labels_needed([0.5, 0.6], [10, 20], 0.9) == 20  # never reached: all of them
    labels = bench.task_labels(
        {
            "fracture": np.array(["1", "0"]),
            "tumour_category": np.array(["intermediate", "benign"]),
            "implant": np.array(["0", "1"]),
        }
    )
    assert labels["fracture"].tolist() == [1, 0] and labels["tumour"].tolist() == [1, 0]
    assert labels["implant"].tolist() == [0, 1]
    regions = {"region": np.array(["ankle", "foot", "ankle"])}
    assert bench.control_labels(regions, ["ankle"])["control_ankle"].tolist() == [1, 0, 1]
    with pytest.raises(SystemExit, match="unknown control region"):
        bench.control_labels(regions, ["elbow"])

    result = bench.benchmark(x, y, groups, seeds=2, step=20, start_size=10, threads=1)
    for run in result["runs"]:
        assert run["full"] > 0.85  # the planted signal is learnt
        assert len(run["curves"]["active"]) == len(run["curves"]["random"]) == len(run["budgets"])
        assert run["budgets"][-1] == run["pool"]
        assert min(run["needed"].values()) <= run["pool"]
    path = bench.curve_plot("planted", result, tmp_path / "al.png")
    assert cv2.imread(str(path)).shape == (480, 640, 3)
