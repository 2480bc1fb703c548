"""ROC and reliability plots: the curves agree with the metrics, the PNGs are drawn where the
data says, matplotlib stays off Qt and out of the import, and every training stores the plots
in the head's folder with their sha256."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.heads.metrics import reliability, softmax
from skelex_desktop.core.heads.plots import (
    BAR,
    PALETTE,
    calibration_figure,
    head_plots,
    roc_figure,
    save_png,
)
from skelex_desktop.core.heads.training_job import train_head
from skelex_desktop.core.heads.versions import list_versions
from skelex_desktop.core.inference.package import sha256_bytes
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.stats import auroc as rank_auroc
from tests.core.test_heads_dataset import make_labelled

ROOT = Path(__file__).resolve().parents[2]


def _scores(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.round(rng.normal(size=n) + y, 1)  # rounded: ties included


def _bgr(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[k : k + 2], 16) for k in (5, 3, 1)])


def _pixel(image: np.ndarray, figure: object, ax: object, x: float, y: float) -> np.ndarray:
    """The BGR pixel of data point (x, y) of `ax` in the saved PNG of `figure`."""
    px, py = ax.transData.transform((x, y))  # type: ignore[attr-defined]
    return image[int(round(image.shape[0] - py)), int(round(px))].astype(int)


def test_roc_curve_is_the_auroc_and_is_drawn_where_the_data_says(tmp_path: Path) -> None:
    y, s = _scores()
    figure = roc_figure(y, np.stack([np.zeros_like(s), s], axis=1), ["no", "yes"], "t")
    (ax,) = figure.axes
    (curve,) = [line for line in ax.lines if line.get_label().startswith("yes")]
    fpr, tpr = curve.get_xdata(), curve.get_ydata()
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    # the trapezoids under the drawn curve = our own Mann-Whitney AUROC (core.stats)
    p = softmax(np.stack([np.zeros_like(s), s], axis=1))[:, 1]
    assert abs(area - rank_auroc(p, y == 1)) < 1e-12
    assert f"AUC {area:.3f}" in curve.get_label()

    # ROC of y [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8]: (0, 0), (0, .5), (.5, .5), (.5, 1),
    # (1, 1); the middle of the horizontal step at tpr 0.5 is the curve's colour in the PNG
    logits = np.stack([np.zeros(4), [0.1, 0.4, 0.35, 0.8]], axis=1)
    figure = roc_figure(np.array([0, 0, 1, 1]), logits, ["no", "yes"], "steps")
    image = cv2.imread(str(save_png(tmp_path / "steps.png", figure)))
    (ax,) = figure.axes
    assert np.abs(_pixel(image, figure, ax, 0.25, 0.5) - _bgr(PALETTE[0])).max() < 40
    assert (_pixel(image, figure, ax, 0.25, 0.75) > 200).all()  # above the step: background


def test_reliability_diagram_draws_the_bins(tmp_path: Path) -> None:
    y, s = _scores()
    logits = np.stack([np.zeros_like(s), 3 * s - 1], axis=1)
    figure = calibration_figure(y, logits, "t", temperature=2.0)
    image = cv2.imread(str(save_png(tmp_path / "cal.png", figure)))
    (ax,) = figure.axes
    conf, acc, counts = reliability(y, softmax(logits, 2.0))
    after = [line for line in ax.lines if line.get_label().startswith("after")][0]
    used = counts > 0
    assert np.allclose(after.get_xdata(), conf[used]) and np.allclose(after.get_ydata(), acc[used])
    # every "after" marker is drawn in its colour at (confidence, accuracy)
    for x, v in zip(conf[used], acc[used], strict=True):
        assert np.abs(_pixel(image, figure, ax, x, v) - _bgr(PALETTE[1])).max() < 40
    # the fullest bin's bar reaches a quarter of the height, no higher
    b = int(np.argmax(counts))
    centre = (b + 0.5) / len(counts)
    assert np.abs(_pixel(image, figure, ax, centre, 0.2) - _bgr(BAR)).max() < 10
    assert (_pixel(image, figure, ax, centre, 0.27) > 245).all()


def test_head_plots_are_640x480_pngs(tmp_path: Path) -> None:
    y, s = _scores()
    binary = np.stack([np.zeros_like(s), 3 * s - 1], axis=1)
    rng = np.random.default_rng(1)
    y4 = rng.integers(0, 4, 120)
    logits4 = rng.normal(size=(120, 4)) + 2.0 * np.eye(4)[y4]
    written = head_plots(tmp_path, "fracture", ["no fracture", "fracture"], y, binary, 1.7)
    written += head_plots(
        tmp_path,
        "tumour_category",
        ["malignant", "intermediate", "benign", "none"],
        y4,
        logits4,
        0.8,
    )
    assert [p.name for p in written] == [
        "roc_fracture.png",
        "calibration_fracture.png",
        "roc_tumour_category.png",
        "calibration_tumour_category.png",
    ]
    for path in written:
        image = cv2.imread(str(path))
        assert image.shape == (480, 640, 3)
        coloured = (image.max(axis=2).astype(int) - image.min(axis=2)) > 60
        assert coloured.sum() > 500  # curves were drawn, not just axes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    (tmp_path / "again").mkdir()  # the same figure gives the same bytes (no version stamp)
    again = head_plots(tmp_path / "again", "fracture", ["no fracture", "fracture"], y, binary, 1.7)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written[:2]]


def test_plots_import_nothing_heavy_and_never_qt(tmp_path: Path) -> None:
    code = f"""
import sys
import numpy as np
import skelex_desktop.core.heads.plots as plots
heavy = {{"matplotlib", "sklearn", "scipy"}} & {{m.split(".")[0] for m in sys.modules}}
assert not heavy, heavy
y = np.array([0, 1, 0, 1, 1])
plots.head_plots({str(tmp_path)!r}, "t", ["a", "b"], y, np.eye(2)[y] + 0.3, 1.0)
assert "matplotlib" in sys.modules and "matplotlib.pyplot" not in sys.modules
qt = [m for m in sys.modules if m.split(".")[0] in ("PySide6", "PySide2", "PyQt5", "PyQt6")]
assert not qt, qt
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "roc_t.png").is_file() and (tmp_path / "calibration_t.png").is_file()


def test_training_stores_plots_with_their_sha256(db: Database, settings: Settings) -> None:
    sha = Registry.from_settings(settings).manifest(settings.active_model).embedding_identity
    make_labelled(db, settings.data_dir, {"fracture": [0, 1] * 9}, sha=sha)
    result = train_head(db, settings, ["fracture"], folds=3, seed=0)
    assert [p.name for p in result.plots] == ["roc_fracture.png", "calibration_fracture.png"]
    assert all(p.parent == result.folder and p.is_file() for p in result.plots)
    assert result.to_json()["plots"] == [str(p) for p in result.plots]
    (view,) = [v for v in list_versions(db) if v.name == "head-fracture"]
    for path in result.plots:
        assert view.file_sha256[path.name] == sha256_bytes(path.read_bytes())
    assert not list(result.folder.glob("*.tmp")) and not list(result.folder.glob(".*"))
