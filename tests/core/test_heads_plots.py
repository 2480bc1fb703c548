"""ROC and reliability plots: the curves agree with the metrics, the PNGs are drawn, and every
training stores them in the head's folder with their sha256."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.heads.metrics import auroc, expected_calibration_error, softmax
from skelex_desktop.core.heads.plots import (
    Chart,
    Series,
    head_plots,
    nice_ticks,
    reliability,
    roc_curve,
)
from skelex_desktop.core.heads.train import train_head
from skelex_desktop.core.heads.versions import list_versions
from skelex_desktop.core.inference.package import sha256_bytes
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.settings import Settings
from tests.core.test_heads_dataset import make_labelled


def _scores(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.round(rng.normal(size=n) + y, 1)  # rounded: ties included


def test_roc_curve_area_is_the_auroc_and_reliability_bins_give_the_ece() -> None:
    y, s = _scores()
    fpr, tpr = roc_curve(y, s)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert abs(area - auroc(y, s)) < 1e-12
    probs = softmax(np.stack([np.zeros_like(s), 2 * s - 1], axis=1))
    conf, acc, counts = reliability(y, probs)
    assert counts.sum() == len(y) and np.isnan(conf[:4]).all()  # binary: confidence >= 0.5
    used = counts > 0
    ece = np.sum(counts[used] / len(y) * np.abs(acc[used] - conf[used]))
    assert abs(ece - expected_calibration_error(y, probs)) < 1e-12
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 300)[:3] == [0.0, 50.0, 100.0]


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
    chart = Chart("t", "x", "y", xlim=(0, 10), ylim=(0.5, 1.0))
    chart.add(
        Series(
            "a",
            np.arange(11),
            np.linspace(0.5, 1, 11),
            (0, 0, 255),
            markers=True,
            band=(np.full(11, 0.5), np.full(11, 1.0)),
        )
    )
    assert chart.render().shape == (480, 640, 3)
    assert (chart.to_px([0, 10], [0.5, 1.0]) == [[72, 480 - 58], [640 - 24, 44]]).all()


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
