"""Evaluation plots of a trained head, drawn with matplotlib: ROC curves and reliability
diagrams from out-of-fold logits, plus the figure and PNG helpers the benchmarks use.

Only matplotlib's object-oriented API is used (`Figure` on a `FigureCanvasAgg`), never pyplot:
no GUI backend is chosen or imported, so the core stays Qt-free, and there is no global figure
state. matplotlib and scikit-learn are imported inside the functions; both belong to the full
edition (training), importing this module pulls neither.

Every figure is 640 x 480 pixels (6.4 x 4.8 inches at 100 dpi). `head_plots` makes the two
files a training stores next to its weights: `roc_<task>.png` and `calibration_<task>.png`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from skelex_desktop.core.heads.metrics import (
    auroc,
    expected_calibration_error,
    reliability,
    softmax,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 640, 480, 100
INK = "#282828"
GRID = "#e1e1e1"
CHANCE = "#969696"
BAR = "#d7e1eb"
# a colour-blind-friendly qualitative palette (Okabe-Ito)
PALETTE = [
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#E69F00",
    "#000000",
]


def new_figure(
    title: str,
    xlabel: str,
    ylabel: str,
    xlim: tuple[float, float] = (0.0, 1.0),
    ylim: tuple[float, float] = (0.0, 1.0),
) -> tuple[Figure, Axes]:
    """A 640 x 480 figure on the Agg canvas with one grid-lined axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.set_title(title, fontsize=11, color=INK)
    ax.set_xlabel(xlabel, color=INK)
    ax.set_ylabel(ylabel, color=INK)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    return figure, ax


def roc_figure(
    y_true: np.ndarray,
    logits: np.ndarray,
    classes: Sequence[str],
    task: str,
    temperature: float = 1.0,
) -> Figure:
    """ROC (`sklearn.metrics.roc_curve`) of out-of-fold predictions: the positive class for two
    classes, else one curve per class (one-vs-rest) present with both outcomes."""
    from sklearn.metrics import roc_curve

    y = np.asarray(y_true)
    probs = softmax(logits, temperature)
    figure, ax = new_figure(
        f"ROC - {task} (out-of-fold, n={len(y)})", "false positive rate", "true positive rate"
    )
    ax.plot([0, 1], [0, 1], color=CHANCE, linewidth=1, linestyle="--", label="chance")
    which = [1] if len(classes) == 2 else list(range(len(classes)))
    for k, c in enumerate(which):
        positive = y == c
        area = auroc(positive, probs[:, c])
        if area is None:
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, c], drop_intermediate=False)
        name = str(classes[c]) if len(classes) == 2 else f"{classes[c]} vs rest"
        ax.plot(
            fpr,
            tpr,
            color=PALETTE[k % len(PALETTE)],
            linewidth=2,
            clip_on=False,  # a curve along the top or left edge stays whole
            label=f"{name}  AUC {area:.3f}  ({int(positive.sum())} pos)",
        )
    ax.legend(loc="lower right", fontsize=8)
    return figure


def calibration_figure(
    y_true: np.ndarray, logits: np.ndarray, task: str, temperature: float, bins: int = 10
) -> Figure:
    """Reliability diagram of the top-class confidence before and after temperature scaling;
    the pale bars show how many images fall in each bin after scaling (tallest = 1/4 height)."""
    y = np.asarray(y_true)
    figure, ax = new_figure(
        f"Reliability - {task} (out-of-fold, n={len(y)})",
        "confidence (top-class probability)",
        "accuracy",
    )
    ax.plot([0, 1], [0, 1], color=CHANCE, linewidth=1, linestyle="--", label="perfect calibration")
    edges = np.linspace(0.0, 1.0, bins + 1)
    for k, (name, t) in enumerate((("before", 1.0), (f"after, T={temperature:.2f}", temperature))):
        probs = softmax(logits, t)
        conf, acc, counts = reliability(y, probs, bins)
        ece = expected_calibration_error(y, probs, bins)
        used = counts > 0
        ax.plot(
            conf[used],
            acc[used],
            color=PALETTE[k],
            linewidth=2,
            marker="o",
            markersize=5,
            label=f"{name}  ECE {ece:.3f}",
        )
        if k == 1 and counts.max() > 0:
            ax.bar(
                edges[:-1],
                counts / counts.max() / 4,
                width=np.diff(edges),
                align="edge",
                color=BAR,
                edgecolor="white",
                zorder=1,
                label=f"images per bin (max {int(counts.max())})",
            )
    ax.legend(loc="upper left", fontsize=8)
    return figure


def save_png(path: Path, figure: Figure) -> Path:
    """Write `figure` as a 640 x 480 PNG at `path` (through a temporary name); no version stamp
    in the file, so the same figure gives the same bytes."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    tmp.replace(path)
    return path


def head_plots(
    folder: Path,
    task: str,
    classes: Sequence[str],
    y_true: np.ndarray,
    logits: np.ndarray,
    temperature: float,
) -> list[Path]:
    """`roc_<task>.png` and `calibration_<task>.png` in `folder` from out-of-fold logits of the
    labelled images; returns their paths."""
    folder = Path(folder)
    return [
        save_png(folder / f"roc_{task}.png", roc_figure(y_true, logits, classes, task)),
        save_png(
            folder / f"calibration_{task}.png",
            calibration_figure(y_true, logits, task, temperature),
        ),
    ]
