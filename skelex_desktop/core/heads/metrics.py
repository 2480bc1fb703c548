"""Classification metrics and temperature scaling in numpy (no scikit-learn).

Probabilities are [N, C] arrays; labels are integer class indices [N].
"""

from __future__ import annotations

import numpy as np

from skelex_desktop.core.stats import auroc as rank_auroc


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of [N, C] logits divided by `temperature`."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def auroc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve of binary labels (1 = positive) and scores, ties counted half.

    None when only one class is present (the AUROC is undefined then).
    """
    value = rank_auroc(scores, np.asarray(y_true).astype(bool))
    return None if np.isnan(value) else float(value)


def macro_auroc_ovr(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    """One-vs-rest AUROC averaged over the classes present with both outcomes."""
    y = np.asarray(y_true)
    values = [auroc(y == c, probs[:, c]) for c in range(probs.shape[1])]
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in `y_true`."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    recalls = [float(np.mean(p[y == c] == c)) for c in np.unique(y)]
    return float(np.mean(recalls))


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Unweighted mean F1 over classes present in the labels or the predictions."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in range(n_classes):
        tp = int(np.sum((p == c) & (y == c)))
        fp = int(np.sum((p == c) & (y != c)))
        fn = int(np.sum((p != c) & (y == c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean |y - prediction| of ordinal class indices (grades)."""
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class confidence in `bins` equal-width bins (weighted by bin size)."""
    probs = np.asarray(probs, np.float64)
    y = np.asarray(y_true)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean -log p(true class), clipped away from log(0)."""
    p = np.asarray(probs, np.float64)[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T) (golden-section search
    on log T in [1/20, 20]); fit it on out-of-fold logits only."""
    y = np.asarray(y_true)

    def nll(log_t: float) -> float:
        return negative_log_likelihood(y, softmax(logits, float(np.exp(log_t))))

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2.0))


def classification_report(
    y_true: np.ndarray, logits: np.ndarray, kind: str, temperature: float | None = None
) -> dict[str, float | None]:
    """AUROC, balanced accuracy, macro F1 (+ MAE for ordinal), ECE (before and, with a
    temperature, after scaling) of [N, C] logits whose softmax is the class distribution."""
    y = np.asarray(y_true)
    probs = softmax(logits)
    pred = probs.argmax(axis=1)
    n_classes = probs.shape[1]
    report: dict[str, float | None] = {
        "n": float(len(y)),
        "auroc": auroc(y == 1, probs[:, 1]) if n_classes == 2 else macro_auroc_ovr(y, probs),
        "balanced_accuracy": balanced_accuracy(y, pred),
        "f1_macro": f1_macro(y, pred, n_classes),
        "nll": negative_log_likelihood(y, probs),
        "ece": expected_calibration_error(y, probs),
    }
    if kind == "ordinal":
        report["mae"] = mean_absolute_error(y, pred)
    if temperature is not None:
        report["temperature"] = float(temperature)
        report["ece_calibrated"] = expected_calibration_error(y, softmax(logits, temperature))
        report["nll_calibrated"] = negative_log_likelihood(y, softmax(logits, temperature))
    return report
