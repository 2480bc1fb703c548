"""Head training on frozen embeddings: binary, multiclass, ordinal and multi-head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skelex_desktop.core.heads.metrics import auroc
from skelex_desktop.core.heads.model import HeadWeights, ordinal_probabilities
from skelex_desktop.core.heads.training_set import MISSING, HeadDataset, TaskSpec
from skelex_desktop.core.training.head_fit import HeadConfig, fit_heads, train_heads

BINARY = TaskSpec("fracture", "binary", ["no fracture", "fracture"])
MULTI = TaskSpec("tumour_category", "multiclass", ["malignant", "intermediate", "benign", "none"])
ORDINAL = TaskSpec("kl_grade", "ordinal", ["0", "1", "2", "3", "4"])


def _synthetic(n: int = 300, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    s = x[:, 0] + 0.3 * rng.normal(size=n)
    y = np.stack(
        [(s > 0).astype(int), np.argmax(x[:, 1:5], axis=1), np.digitize(s, [-1.0, -0.3, 0.3, 1.0])],
        axis=1,
    )
    return x.astype(np.float32), y


def test_each_kind_learns_a_planted_signal() -> None:
    x, y = _synthetic()
    model = fit_heads(x[:200], y[:200], [BINARY, MULTI, ORDINAL])
    probs = model.probabilities(x[200:])
    assert auroc(y[200:, 0], probs["fracture"][:, 1]) > 0.9
    assert np.mean(probs["tumour_category"].argmax(1) == y[200:, 1]) > 0.8
    assert np.mean(np.abs(probs["kl_grade"].argmax(1) - y[200:, 2])) < 0.5
    for p in probs.values():
        assert np.allclose(p.sum(axis=1), 1.0)
    assert np.all(np.diff(model.biases["kl_grade"]) > 0)  # ordered thresholds


def test_multi_head_losses_are_masked_and_independent() -> None:
    x, y = _synthetic()
    y = y.copy()
    y[::3, 2] = MISSING
    joint = fit_heads(x, y[:, [0, 2]], [BINARY, ORDINAL])
    alone = fit_heads(x, y[:, [2]], [ORDINAL])
    assert np.allclose(joint.weights["kl_grade"], alone.weights["kl_grade"], atol=1e-5)
    labelled = y[:, 2] != MISSING
    probs = joint.probabilities(x)["kl_grade"]
    assert np.mean(probs[labelled].argmax(1) == y[labelled, 2]) > 0.7


def test_training_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    x, y = _synthetic(n=120)
    data = HeadDataset(
        [BINARY], x, y[:, :1], np.array([f"P{i // 2}" for i in range(120)]), np.arange(120)
    )
    a, cv = train_heads(data, k=4, config=HeadConfig(seed=3))
    b, _ = train_heads(data, k=4, config=HeadConfig(seed=3))
    assert np.array_equal(a.weights["fracture"], b.weights["fracture"])
    assert len(cv.fold_metrics) == 4 and cv.metrics["fracture"]["auroc"] > 0.9
    assert cv.temperatures["fracture"] == a.temperatures["fracture"] > 0
    assert not np.isnan(cv.oof_logits["fracture"]).any()
    a.save(tmp_path / "h.npz")
    loaded = HeadWeights.load(tmp_path / "h.npz")
    assert np.allclose(loaded.probabilities(x)["fracture"], a.probabilities(x)["fracture"])


def test_ordinal_probabilities_are_differences_of_cumulatives() -> None:
    p = ordinal_probabilities(np.array([0.0]), np.array([-1.0, 1.0]))
    s = 1 / (1 + np.exp(-1.0))
    assert p[0] == pytest.approx([1 - s, s - (1 - s), 1 - s])
