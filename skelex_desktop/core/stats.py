"""Rank statistics of the model calibration and the localisation yardstick (reader edition).

Kept as our own numpy code on purpose, not scikit-learn's `roc_auc_score` (which the head
metrics of the full edition use, and which agrees with `auroc` to 1e-12 in
tests/core/test_heads_metrics.py): the calibration runs in the reader edition, which has no
torch and a 300 MB budget. Measured in the project's .venv (Python 3.11, Linux x86-64):
scikit-learn 1.9.1 with what it installs (scipy 1.17.1, joblib, threadpoolctl, narwhals,
cloudpickle) is 202 MiB installed, and `from sklearn.metrics import roc_auc_score` alone loads
90 MiB of it (scipy 77 MiB); the reader's own packages (PySide6, onnxruntime, OpenCV, numpy,
pydicom, gdcm, SQLAlchemy, ...) are already 697 MiB installed before the bundle is trimmed.
A 25-line Mann-Whitney AUROC is not worth that; see "Libraries" in docs/TRAINING.md.
"""

from __future__ import annotations

import numpy as np


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of their ranks."""
    values = np.asarray(values).ravel()
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[inverse.ravel()]


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for bool `labels` (Mann-Whitney, ties count half);
    NaN without both classes."""
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels, bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    pos = int(labels.sum())
    neg = labels.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    rank_sum = float(midranks(scores)[labels].sum())
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)
