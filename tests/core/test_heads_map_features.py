"""Head feature sets (issue #20): error-map statistics as head input, recorded in head files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skelex_desktop.core.heads.map_features import (
    EMBEDDING,
    EMBEDDING_MAP,
    MAP_FEATURES,
    head_input,
    map_features,
)
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.training_set import TaskSpec
from skelex_desktop.core.inference.hotspots import Hotspot

ROOT = Path(__file__).resolve().parents[2]
FRACTURE = TaskSpec("fracture", "binary", ["no fracture", "fracture"])


def _head(d: int, features: str = EMBEDDING) -> HeadWeights:
    rng = np.random.default_rng(0)
    return HeadWeights(
        tasks=[FRACTURE],
        mean=rng.normal(size=d),
        scale=np.abs(rng.normal(size=d)) + 0.5,
        weights={"fracture": rng.normal(size=(d, 1))},
        biases={"fracture": np.array([0.1])},
        temperatures={"fracture": 1.5},
        features=features,
    )


def test_map_features_by_hand() -> None:
    model_map = np.zeros((8, 8))
    model_map[2:4, 2:4] = 1.0  # 4 hot pixels inside the foreground
    model_map[0, 0] = 9.0  # outside the foreground: counts nowhere
    foreground = np.zeros((8, 8), bool)
    foreground[1:7, 1:7] = True  # 36 pixels
    spot = Hotspot(2, 2, 4, 4, score=5.0, peak_error=1.0, mean_error=1.0, area=4)
    full = np.zeros((16, 16))
    full[4:8, 4:8] = 2.0
    v = map_features(model_map, foreground, [spot], 0.7, full, (4, 4, 12, 12))
    assert v.shape == (len(MAP_FEATURES),)
    got = dict(zip(MAP_FEATURES, v.tolist(), strict=True))
    assert got["fg_mean"] == pytest.approx(4 / 36)
    assert got["fg_std"] == pytest.approx(np.sqrt(4 / 36 - (4 / 36) ** 2))
    assert got["fg_p90"] == pytest.approx(np.percentile(model_map[foreground], 90))
    assert got["fg_p999"] == pytest.approx(1.0, abs=1e-9)
    assert got["anomaly_score"] == 0.7
    assert got["log1p_hotspots"] == pytest.approx(np.log(2))
    assert got["hotspot_area_share"] == pytest.approx(4 / 36)
    assert (got["top_peak"], got["top_mean"], got["top_z"]) == (1.0, 1.0, 5.0)
    assert got["top_area_share"] == pytest.approx(4 / 36)
    assert got["crop_mean"] == pytest.approx(2.0 * 16 / 64)  # crop 8 x 8, 16 pixels at 2
    assert got["crop_max"] == 2.0
    assert got["crop_mean_ratio"] == pytest.approx(0.5 / (4 / 36))


def test_map_features_without_hotspots_or_foreground() -> None:
    model_map = np.full((4, 4), 0.25)
    v = map_features(model_map, np.zeros((4, 4), bool), [], 0.25, model_map, (0, 0, 4, 4))
    got = dict(zip(MAP_FEATURES, v.tolist(), strict=True))
    assert got["fg_mean"] == 0.25  # an empty foreground means the whole map, as the runtime
    for name in ("log1p_hotspots", "hotspot_area_share", "top_peak", "top_z", "top_area_share"):
        assert got[name] == 0.0
    assert got["crop_mean_ratio"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty crop"):
        map_features(model_map, np.ones((4, 4), bool), [], 0.0, model_map, (2, 2, 2, 2))


def test_head_input() -> None:
    emb = np.arange(6.0).reshape(2, 3)
    stats = np.ones((2, len(MAP_FEATURES)))
    assert np.array_equal(head_input(EMBEDDING, emb), emb)
    both = head_input(EMBEDDING_MAP, emb, stats)
    assert both.shape == (2, 3 + len(MAP_FEATURES))
    assert np.array_equal(both[:, :3], emb) and np.array_equal(both[:, 3:], stats)
    with pytest.raises(ValueError, match="needs the images' error-map statistics"):
        head_input(EMBEDDING_MAP, emb)
    with pytest.raises(ValueError, match="expected map statistics"):
        head_input(EMBEDDING_MAP, emb, stats[:1])
    with pytest.raises(ValueError, match="unknown head feature set"):
        head_input("pixels", emb)


def test_embedding_head_file_unchanged(tmp_path: Path) -> None:
    """An embedding head's file records no feature set (its bytes are those of before)."""
    head = _head(5)
    head.save(tmp_path / "head.npz")
    with np.load(tmp_path / "head.npz", allow_pickle=False) as data:
        assert set(json.loads(str(data["meta"]))) == {"tasks", "temperatures"}
    again = HeadWeights.load(tmp_path / "head.npz")
    assert again.features == EMBEDDING
    x = np.random.default_rng(1).normal(size=(4, 5))
    assert np.array_equal(again.logits(x)["fracture"], head.logits(x)["fracture"])


def test_map_head_round_trip_and_width_check(tmp_path: Path) -> None:
    head = _head(3 + len(MAP_FEATURES), EMBEDDING_MAP)
    head.save(tmp_path / "head.npz")
    again = HeadWeights.load(tmp_path / "head.npz")
    assert again.features == EMBEDDING_MAP
    x = head_input(EMBEDDING_MAP, np.ones((2, 3)), np.zeros((2, len(MAP_FEATURES))))
    assert np.array_equal(again.probabilities(x)["fracture"], head.probabilities(x)["fracture"])
    with pytest.raises(ValueError, match=r"'embedding\+map' takes 19 input values, got 3"):
        again.logits(np.ones((2, 3)))  # embeddings alone do not fit a map head


def test_unknown_feature_set_refused(tmp_path: Path) -> None:
    _head(4, "pixels").save(tmp_path / "head.npz")
    with pytest.raises(ValueError, match="unknown feature set 'pixels'"):
        HeadWeights.load(tmp_path / "head.npz")


def test_bundled_heads_are_embedding_heads() -> None:
    folder = ROOT / "models" / "skelex-demo" / "heads"
    files = sorted(folder.glob("*.npz"))
    assert files
    for path in files:
        assert HeadWeights.load(path).features == EMBEDDING
