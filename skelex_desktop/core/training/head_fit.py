"""Training task heads on frozen embeddings (torch, full-batch L-BFGS).

One linear head per task on standardised embeddings: logistic for binary, softmax for
multiclass, cumulative logit for ordinal tasks. Several tasks form one multi-head model whose
loss is the sum of per-task masked losses: an image without a label for a task adds nothing to
that task's loss. The embeddings are frozen, so that sum is separable and each head is
minimised on its own (exactly the joint minimum, and better conditioned than one joint run). Weights start at zero and L-BFGS is deterministic, so a seed
and the data fix the result. torch is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

import numpy as np

from skelex_desktop.core.heads.metrics import classification_report, fit_temperature
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.splits import grouped_stratified_folds
from skelex_desktop.core.heads.training_set import MISSING, HeadDataset, TaskSpec

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class HeadConfig:
    """Optimisation settings: L2 penalty on the weights (not biases), L-BFGS iterations."""

    l2: float = 1e-2
    max_iter: int = 100
    seed: int = 0
    threads: int = 2


def _n_outputs(task: TaskSpec) -> int:
    return len(task.classes) if task.kind == "multiclass" else 1


def fit_heads(
    x: np.ndarray, y: np.ndarray, tasks: list[TaskSpec], config: HeadConfig = HeadConfig()
) -> HeadWeights:
    """Fit one head per task column of `y` ([N, T], MISSING where unlabelled)."""
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, config.threads))
    mean = x.mean(axis=0).astype(np.float64)
    scale = x.std(axis=0).astype(np.float64)
    scale[scale < 1e-8] = 1.0
    z = torch.from_numpy((x - mean) / scale)
    targets = torch.from_numpy(np.asarray(y, np.int64))
    weights, biases = {}, {}
    for column, task in enumerate(tasks):
        known = targets[:, column] != MISSING  # the mask: unlabelled images add no loss
        w, b = _fit_one(task, z[known], targets[known, column], config)
        weights[task.name] = w
        biases[task.name] = _ordered_cuts(b) if task.kind == "ordinal" else b
    return HeadWeights(tasks=list(tasks), mean=mean, scale=scale, weights=weights, biases=biases)


def _fit_one(
    task: TaskSpec, z: Tensor, target: Tensor, config: HeadConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise one head's masked loss + L2 with L-BFGS from zero weights."""
    import torch

    w = torch.zeros(z.shape[1], _n_outputs(task), dtype=torch.float64, requires_grad=True)
    if task.kind == "ordinal":
        cuts = np.linspace(-1.0, 1.0, len(task.classes) - 1)
        raw = np.concatenate([cuts[:1], np.log(np.expm1(np.diff(cuts)))])
        b = torch.tensor(raw, dtype=torch.float64, requires_grad=True)
    else:
        b = torch.zeros(_n_outputs(task), dtype=torch.float64, requires_grad=True)
    if len(target) == 0:
        return w.detach().numpy(), b.detach().numpy()
    optimiser = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=config.max_iter,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
    )

    def closure() -> Tensor:
        optimiser.zero_grad()
        loss = _task_loss(task, z @ w, b, target) + 0.5 * config.l2 * (w * w).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return w.detach().numpy().copy(), b.detach().numpy().copy()


@overload
def _ordered_cuts(raw: np.ndarray) -> np.ndarray: ...


@overload
def _ordered_cuts(raw: Tensor) -> Tensor: ...


def _ordered_cuts(raw: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """Thresholds b_0 < b_1 < ... from a first value and softplus-positive steps."""
    if isinstance(raw, np.ndarray):
        return np.concatenate([raw[:1], raw[0] + np.cumsum(np.logaddexp(0.0, raw[1:]))])
    import torch

    steps = torch.nn.functional.softplus(raw[1:])
    return torch.cat([raw[:1], raw[0] + torch.cumsum(steps, 0)])


def _task_loss(task: TaskSpec, out: Tensor, b: Tensor, target: Tensor) -> Tensor:
    import torch
    import torch.nn.functional as F

    if task.kind == "binary":
        return F.binary_cross_entropy_with_logits(out[:, 0] + b[0], target.double())
    if task.kind == "multiclass":
        return F.cross_entropy(out + b, target)
    cuts = _ordered_cuts(b)
    above = torch.sigmoid(out[:, :1] - cuts[None, :])
    n = out.shape[0]
    cumulative = torch.cat([out.new_ones(n, 1), above, out.new_zeros(n, 1)], dim=1)
    probs = (cumulative[:, :-1] - cumulative[:, 1:]).clamp_min(1e-12)
    return -torch.log(probs.gather(1, target[:, None])).mean()


@dataclass
class CrossValidation:
    """Out-of-fold logits, per-fold and overall metrics, and the fitted temperatures."""

    folds: np.ndarray
    oof_logits: dict[str, np.ndarray]
    fold_metrics: list[dict[str, dict[str, float | None]]] = field(default_factory=list)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)


FoldCallback = Callable[[int, dict[str, dict[str, float | None]]], None]


def cross_validate(
    data: HeadDataset,
    k: int = 5,
    config: HeadConfig = HeadConfig(),
    on_fold: FoldCallback | None = None,
) -> CrossValidation:
    """Patient-grouped stratified k-fold CV (stratified on the first task); a temperature per
    task is fitted on the out-of-fold logits, and metrics reported before and after it."""
    strata = data.y[:, 0]
    folds = grouped_stratified_folds(strata, data.groups, k, config.seed)
    oof = {t.name: np.full((len(data.y), len(t.classes)), np.nan) for t in data.tasks}
    result = CrossValidation(folds=folds, oof_logits=oof)
    for fold in range(k):
        held = folds == fold
        model = fit_heads(data.x[~held], data.y[~held], data.tasks, config)
        logits = model.logits(data.x[held])
        report = {}
        for column, task in enumerate(data.tasks):
            oof[task.name][held] = logits[task.name]
            known = data.y[held, column] != MISSING
            if known.any():
                report[task.name] = classification_report(
                    data.y[held, column][known], logits[task.name][known], task.kind
                )
        result.fold_metrics.append(report)
        if on_fold is not None:
            on_fold(fold, report)
    for column, task in enumerate(data.tasks):
        known = data.y[:, column] != MISSING
        labels, logits = data.y[known, column], oof[task.name][known]
        temperature = fit_temperature(logits, labels)
        result.temperatures[task.name] = temperature
        result.metrics[task.name] = classification_report(labels, logits, task.kind, temperature)
    return result


def train_heads(
    data: HeadDataset,
    k: int = 5,
    config: HeadConfig = HeadConfig(),
    on_fold: FoldCallback | None = None,
) -> tuple[HeadWeights, CrossValidation]:
    """Cross-validate, then fit on every label with the out-of-fold temperatures."""
    cv = cross_validate(data, k, config, on_fold)
    model = fit_heads(data.x, data.y, data.tasks, config)
    model.temperatures = dict(cv.temperatures)
    return model, cv
