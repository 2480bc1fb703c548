"""A trained head as plain arrays: standardisation, per-task weights and temperatures.

Saved as one .npz (no pickles) and applied with numpy, so predicting needs no torch.
Per task: "binary" has W [D, 1], b [1] (logit of the second class); "multiclass" W [D, C],
b [C]; "ordinal" (cumulative logit) W [D, 1] and ordered thresholds b [C-1] with
P(grade > k) = sigmoid(x.W - b_k).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from skelex_desktop.core.heads.metrics import softmax
from skelex_desktop.core.heads.training_set import TaskSpec


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def ordinal_probabilities(score: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """[N, C] class probabilities of a cumulative-logit model from scores [N] and C-1 cuts."""
    above = _sigmoid(score[:, None] - thresholds[None, :])  # P(grade > k), k = 0..C-2
    ones = np.ones((len(score), 1))
    zeros = np.zeros((len(score), 1))
    cumulative = np.hstack([ones, above, zeros])
    return np.clip(cumulative[:, :-1] - cumulative[:, 1:], 1e-12, 1.0)


@dataclass
class HeadWeights:
    """Everything needed to turn embeddings into class probabilities for each task."""

    tasks: list[TaskSpec]
    mean: np.ndarray
    scale: np.ndarray
    weights: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    temperatures: dict[str, float] = field(default_factory=dict)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) / self.scale

    def logits(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """[N, C] logits per task whose softmax is the (uncalibrated) class distribution."""
        z = self.standardise(x)
        out = {}
        for task in self.tasks:
            w, b = self.weights[task.name], self.biases[task.name]
            if task.kind == "binary":
                s = z @ w[:, 0] + b[0]
                out[task.name] = np.stack([np.zeros_like(s), s], axis=1)
            elif task.kind == "ordinal":
                out[task.name] = np.log(ordinal_probabilities(z @ w[:, 0], b))
            else:
                out[task.name] = z @ w + b
        return out

    def probabilities(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """[N, C] calibrated class probabilities per task (temperature-scaled)."""
        return {
            name: softmax(lg, self.temperatures.get(name, 1.0))
            for name, lg in self.logits(x).items()
        }

    def save(self, path: Path) -> None:
        arrays = {"mean": self.mean, "scale": self.scale}
        for task in self.tasks:
            arrays[f"w/{task.name}"] = self.weights[task.name]
            arrays[f"b/{task.name}"] = self.biases[task.name]
        meta = {"tasks": [t.to_json() for t in self.tasks], "temperatures": self.temperatures}
        with open(path, "wb") as handle:
            # numpy's stub lets **arrays fill savez's `allow_pickle: bool`; the keys are only
            # "mean", "scale", "w/<task>" and "b/<task>"
            np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path | IO[bytes]) -> HeadWeights:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            tasks = [TaskSpec(**t) for t in meta["tasks"]]
            return cls(
                tasks=tasks,
                mean=data["mean"],
                scale=data["scale"],
                weights={t.name: data[f"w/{t.name}"] for t in tasks},
                biases={t.name: data[f"b/{t.name}"] for t in tasks},
                temperatures={k: float(v) for k, v in meta["temperatures"].items()},
            )
