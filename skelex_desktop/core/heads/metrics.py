"""Classification metrics and temperature scaling of trained heads, on scikit-learn.

Probabilities are [N, C] arrays; labels are integer class indices [N].

The metrics are scikit-learn's (`roc_auc_score`, `balanced_accuracy_score`, `f1_score`,
`mean_absolute_error`, `log_loss`, and `calibration_curve` for the reliability bins), imported
inside the functions: `softmax` is also used to apply heads in the reader edition, which has
no scikit-learn (see "Libraries" in docs/TRAINING.md), so importing this module must not pull
it in. Our own code is left where scikit-learn has no equivalent: the expected calibration
error (ECE, computed from `calibration_curve`'s bins), the macro AUROC over the classes present
with both outcomes (scikit-learn's one-vs-rest AUROC refuses a class without positives), and
fitting the temperature (see `fit_temperature`).
"""

from __future__ import annotations

import warnings

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of [N, C] logits divided by `temperature` (numpy: heads are applied
    with it in the reader edition, which has no scipy)."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def auroc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve of binary labels (1 = positive) and scores, ties counted half
    (`sklearn.metrics.roc_auc_score`).

    None when only one class is present (the AUROC is undefined then).
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true).astype(bool).ravel()
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, np.asarray(scores, np.float64).ravel()))


def macro_auroc_ovr(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    """One-vs-rest AUROC averaged over the classes present with both outcomes (scikit-learn's
    `roc_auc_score(multi_class="ovr")` raises instead when a class has no image)."""
    y = np.asarray(y_true)
    values = [auroc(y == c, probs[:, c]) for c in range(probs.shape[1])]
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in `y_true` (`balanced_accuracy_score`; its
    warning about predicted classes absent from the labels is expected here and silenced)."""
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(np.asarray(y_true), np.asarray(y_pred)))


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Unweighted mean F1 over classes present in the labels or the predictions
    (`f1_score(average="macro")`); classes >= `n_classes` are not counted."""
    from sklearn.metrics import f1_score

    y, p = np.asarray(y_true), np.asarray(y_pred)
    present = [int(c) for c in np.union1d(y, p) if 0 <= c < n_classes]
    if not present:
        return 0.0
    return float(f1_score(y, p, labels=present, average="macro", zero_division=0.0))


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean |y - prediction| of ordinal class indices (grades)."""
    from sklearn.metrics import mean_absolute_error as mae

    return float(mae(np.asarray(y_true, float), np.asarray(y_pred, float)))


def reliability(
    y_true: np.ndarray, probs: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of the top-class confidence: mean confidence, accuracy and count;
    empty bins have NaN confidence and accuracy.

    The means are `sklearn.calibration.calibration_curve` of "the top class is right" against
    the confidence; bin b holds the confidences in (b / bins, (b + 1) / bins] (the first also
    holds 0), the rule of `calibration_curve`'s uniform strategy."""
    from sklearn.calibration import calibration_curve

    p = np.asarray(probs, np.float64)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(y_true)).astype(np.int64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=bins)
    conf = np.full(bins, np.nan)
    acc = np.full(bins, np.nan)
    if len(confidence):
        acc_used, conf_used = calibration_curve(
            correct, confidence, n_bins=bins, strategy="uniform", pos_label=1
        )
        used = counts > 0
        if used.sum() != len(conf_used):
            raise RuntimeError("calibration_curve binned the confidences differently")
        conf[used], acc[used] = conf_used, acc_used
    return conf, acc, counts.astype(np.int64)


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class confidence in `bins` equal-width bins (weighted by bin size);
    scikit-learn has no ECE, so it is summed here over the bins of `reliability`."""
    conf, acc, counts = reliability(y_true, probs, bins)
    used = counts > 0
    if not used.any():
        return 0.0
    return float(np.sum(counts[used] / counts.sum() * np.abs(acc[used] - conf[used])))


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean -log p(true class) (`sklearn.metrics.log_loss`, which clips p away from 0 at the
    float64 epsilon)."""
    from sklearn.metrics import log_loss

    p = np.asarray(probs, np.float64)
    return float(log_loss(np.asarray(y_true), p, labels=np.arange(p.shape[1])))


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T), searched on log T in
    [1/20, 20] by `scipy.optimize.minimize_scalar` (bounded); fit it on out-of-fold logits only.

    Own code around scipy's minimiser: scikit-learn's temperature scaling (1.8+) exists only
    inside `CalibratedClassifierCV(method="temperature")`, which calibrates a fitted estimator;
    its calibrator class, which would take our out-of-fold logits, is private."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y_true)

    def nll(log_t: float) -> float:
        return negative_log_likelihood(y, softmax(logits, float(np.exp(log_t))))

    best = minimize_scalar(
        nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(best.x))


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
