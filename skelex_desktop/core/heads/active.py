"""Active learning order: the unlabelled images worth labelling first.

Informativeness is the uncertainty of the head's probabilities (entropy, or 1 - margin between
the two most probable classes), both in [0, 1]; diversity is k-center greedy on embeddings:
each pick maximises a blend of uncertainty and distance to everything already labelled or
picked, so near-duplicates of one uncertain image are not all asked first.
"""

from __future__ import annotations

import numpy as np

METHODS = ("entropy", "margin")


def uncertainty(probs: np.ndarray, method: str = "entropy") -> np.ndarray:
    """[N] in [0, 1], higher = less certain: normalised entropy or 1 - top-two margin."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    if method == "entropy":
        return -(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])
    if method == "margin":
        top = np.sort(p, axis=1)[:, -2:]
        return 1.0 - (top[:, 1] - top[:, 0])
    raise ValueError(f"unknown uncertainty method {method!r}; use one of {METHODS}")


def informative_order(
    probs: np.ndarray,
    embeddings: np.ndarray,
    labelled: np.ndarray | None = None,
    diversity: float = 0.5,
    method: str = "entropy",
    limit: int = 200,
    scores: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the N candidates, most informative first.

    The first `limit` are chosen greedily by (1 - diversity) * uncertainty + diversity *
    (distance to the nearest labelled or already picked embedding, scaled to [0, 1]); the
    rest follow by uncertainty alone. `labelled`: [M, D] embeddings of labelled images.
    `scores`: precomputed uncertainties in [0, 1] (e.g. averaged over several tasks) instead of
    the uncertainty of `probs`.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError("diversity must be between 0 and 1")
    score = np.asarray(scores, np.float64) if scores is not None else uncertainty(probs, method)
    x = np.asarray(embeddings, np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    nearest = np.full(n, np.inf)
    if labelled is not None and len(labelled):
        for row in np.asarray(labelled, np.float64):
            nearest = np.minimum(nearest, np.linalg.norm(x - row, axis=1))
    chosen: list[int] = []
    free = np.ones(n, bool)
    for _ in range(min(limit, n)):
        finite = np.isfinite(nearest)
        scale = nearest[finite & free].max() if (finite & free).any() else 0.0
        spread = np.where(finite, nearest / scale, 1.0) if scale > 0 else np.ones(n)
        value = (1.0 - diversity) * score + diversity * spread
        value[~free] = -np.inf
        pick = int(np.argmax(value))
        chosen.append(pick)
        free[pick] = False
        nearest = np.minimum(nearest, np.linalg.norm(x - x[pick], axis=1))
    rest = np.flatnonzero(free)
    rest = rest[np.argsort(-score[rest], kind="stable")]
    return np.concatenate([np.array(chosen, np.int64), rest.astype(np.int64)])
