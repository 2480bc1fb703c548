"""Region-guided inference: crop geometry, the max-over-regions rule, one batched embedding
call (a fake runtime for the rule, the bundled demo model for the real thing) and the stored
predictions."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import select

from skelex_desktop.core.analysis.image_analysis import analyse_image
from skelex_desktop.core.db.models import Image, ModelVersion, Prediction
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.predict import head_folder
from skelex_desktop.core.heads.region_guided import (
    REGION_METHOD,
    WHOLE_IMAGE,
    combine_regions,
    crop_box,
    embed_regions,
    plan_regions,
    region_guided,
    region_guided_predictions,
    region_inputs,
)
from skelex_desktop.core.heads.training_job import HEAD_FILE
from skelex_desktop.core.heads.training_set import TaskSpec
from skelex_desktop.core.inference.embeddings import model_input
from skelex_desktop.core.inference.hotspots import Hotspot
from skelex_desktop.core.inference.package import sha256_bytes
from skelex_desktop.core.inference.preprocess import Preprocessing
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.ingest.pixels import read_frame
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.synth import generate_image
from tests.core.test_embeddings import import_synthetic

FRACTURE = TaskSpec("fracture", "binary", ["no fracture", "fracture"])
TUMOUR = TaskSpec("tumour_category", "multiclass", ["malignant", "intermediate", "benign", "none"])
KL = TaskSpec("kl_grade", "ordinal", ["0", "1", "2", "3", "4"])


# --- geometry -------------------------------------------------------------------------------


def test_crops_are_square_inside_the_image_and_follow_the_best_hotspots() -> None:
    shape = (300, 400)  # rows, cols
    assert crop_box((50, 50, 60, 60), shape) == (23, 23, 87, 87)  # 64 px minimum, centred
    assert crop_box((100, 100, 200, 150), shape) == (50, 25, 250, 225)  # 2 x the longer side
    assert crop_box((0, 0, 10, 10), shape) == (0, 0, 64, 64)  # shifted back inside
    assert crop_box((390, 290, 400, 300), shape) == (336, 236, 400, 300)
    assert crop_box((0, 0, 400, 300), shape) == (50, 0, 350, 300)  # at most the shorter side
    assert crop_box((5, 5, 8, 8), (40, 50)) == (0, 0, 40, 40)  # image under 64 px

    spots = [
        (10, 10, 20, 20, 1.0),
        {"x0": 200, "y0": 100, "x1": 210, "y1": 110, "score": 9.0},
        Hotspot(300, 200, 320, 220, 5.0, 0.0, 0.0, 400),
        (12, 12, 18, 18, 3.0),
        (100, 250, 110, 260, 0.5),
    ]
    regions = plan_regions(shape, spots, k=3)
    assert [r.box for r in regions] == [
        (0, 0, 400, 300),
        (173, 73, 237, 137),
        (278, 178, 342, 242),
        (0, 0, 64, 64),
    ]
    assert [r.label for r in regions] == [WHOLE_IMAGE, "hotspot 1", "hotspot 2", "hotspot 3"]
    assert [r.hotspot_score for r in regions] == [None, 9.0, 5.0, 3.0]
    # the 4th hotspot's crop equals the 3rd's: dropped, not counted twice
    assert len(plan_regions(shape, spots, k=4)) == 4
    assert [r.index for r in plan_regions(shape, spots, k=5)] == [0, 1, 2, 3, 4]
    assert len(plan_regions(shape, [], k=3)) == 1
    assert len(plan_regions((64, 64), [(1, 1, 5, 5, 1.0)])) == 1  # crop == whole image


# --- the combination rule ---------------------------------------------------------------------


def test_binary_takes_the_positive_maximum_and_names_its_region() -> None:
    p = np.array([[0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    combined, driver = combine_regions("binary", p)
    assert np.allclose(combined, [0.2, 0.8]) and driver == 1
    combined, driver = combine_regions("binary", np.array([[0.4, 0.6], [0.4, 0.6]]))
    assert driver == 0 and np.allclose(combined, [0.4, 0.6])  # ties: the whole image


@pytest.mark.parametrize("kind", ["multiclass", "ordinal"])
def test_more_classes_take_the_per_class_maximum_renormalised(kind: str) -> None:
    p = np.array([[0.6, 0.1, 0.1, 0.2], [0.1, 0.7, 0.1, 0.1], [0.3, 0.3, 0.3, 0.1]])
    combined, driver = combine_regions(kind, p)
    assert np.allclose(combined, np.array([0.6, 0.7, 0.3, 0.2]) / 1.8)
    assert driver == 1  # the region with the highest probability of the top class (1)
    with pytest.raises(ValueError, match="regression"):
        combine_regions("regression", p)
    with pytest.raises(ValueError, match="2 classes"):
        combine_regions("binary", p)


class FakeRuntime:
    """Embeds each input as (fraction of bright pixels, 1): deterministic and content-driven."""

    def __init__(self) -> None:
        self.manifest = SimpleNamespace(preprocessing=Preprocessing(size=32))
        self.calls: list[tuple[int, ...]] = []

    def embed(self, pixel_values: np.ndarray) -> np.ndarray:
        self.calls.append(pixel_values.shape)
        bright = (pixel_values[:, 0] > 1.0).mean(axis=(1, 2))
        return np.stack([bright, np.ones_like(bright)], axis=1).astype(np.float32)


def fake_head() -> HeadWeights:
    return HeadWeights(
        tasks=[FRACTURE, TUMOUR, KL],
        mean=np.zeros(2),
        scale=np.ones(2),
        weights={
            "fracture": np.array([[40.0], [0.0]]),
            "tumour_category": np.array([[30.0, 0.0, 0.0, -30.0], [0.0, 0.5, 0.5, 1.0]]),
            "kl_grade": np.array([[60.0], [0.0]]),
        },
        biases={
            "fracture": np.array([-2.0]),
            "tumour_category": np.zeros(4),
            "kl_grade": np.array([-1.0, 0.5, 2.0, 3.0]),
        },
        temperatures={"fracture": 1.5},
    )


def test_one_batched_call_and_the_crop_with_the_finding_drives() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 300, (300, 400)).astype(np.float32)
    pixels[200:220, 300:320] = 1000.0  # the finding, under the weaker hotspot
    spots = [(50, 50, 60, 60, 9.0), (300, 200, 320, 220, 5.0)]
    runtime, head = FakeRuntime(), fake_head()
    result = region_guided(pixels, spots, head, runtime)

    assert runtime.calls == [(3, 3, 32, 32)]  # whole image + 2 crops, one call
    regions = plan_regions(pixels.shape, spots)
    assert result.regions == regions
    inputs = region_inputs(pixels, regions, runtime.manifest)
    assert np.array_equal(inputs[0], model_input(pixels, runtime.manifest))
    assert np.array_equal(inputs[2], model_input(pixels[178:242, 278:342], runtime.manifest))

    per_region = head.probabilities(runtime.embed(inputs))
    fracture = result.tasks["fracture"]
    assert np.allclose(fracture.per_region, per_region["fracture"])
    assert fracture.driver == 2
    assert np.isclose(fracture.probabilities[1], per_region["fracture"][:, 1].max())
    assert np.isclose(fracture.probabilities.sum(), 1.0)
    for name in ("tumour_category", "kl_grade"):
        peak = per_region[name].max(axis=0)
        assert np.allclose(result.tasks[name].probabilities, peak / peak.sum())
    assert result.tasks["tumour_category"].driver == 2  # "malignant" wins, from the finding

    details = result.details("fracture")
    assert details["method"] == REGION_METHOD
    assert details["driver"] == {"index": 2, "box": [278, 178, 342, 242], "label": "hotspot 2"}
    assert [r["box"] for r in details["regions"]] == [list(r.box) for r in regions]
    assert details["regions"][0]["label"] == WHOLE_IMAGE
    assert set(details["regions"][1]["probabilities"]) == set(FRACTURE.classes)


# --- the bundled demo model ---------------------------------------------------------------------


def random_head(dim: int, seed: int = 0) -> HeadWeights:
    rng = np.random.default_rng(seed)
    return HeadWeights(
        tasks=[FRACTURE, KL],
        mean=np.zeros(dim),
        scale=np.ones(dim),
        weights={
            "fracture": rng.normal(0, 0.3, (dim, 1)),
            "kl_grade": rng.normal(0, 0.3, (dim, 1)),
        },
        biases={"fracture": np.zeros(1), "kl_grade": np.array([-1.0, 0.0, 1.0, 2.0])},
    )


@pytest.fixture
def demo(settings) -> ErrorMapService:
    settings.inference_threads = 2
    return ErrorMapService(settings, "skelex-demo")


def test_demo_model_on_a_synthetic_radiograph(demo: ErrorMapService) -> None:
    pixels = generate_image(1, 0, size=384, abnormal=True).monochrome2()
    analysis = demo.analyse_pixels(pixels)
    assert analysis.hotspots
    runtime = demo.runtime
    head = random_head(runtime.manifest.data["architecture"]["config"]["hidden_size"])
    runs = runtime.session_runs
    result = region_guided(pixels, analysis.hotspots, head, runtime)
    assert runtime.session_runs == runs + 1  # one batched embedding call

    regions = result.regions
    assert 2 <= len(regions) <= 4 and regions[0].box == (0, 0, 384, 384)
    for region in regions[1:]:
        x0, y0, x1, y1 = region.box
        assert x1 - x0 == y1 - y0 >= 64
        assert min(x0, y0) >= 0 and max(x1, y1) <= 384
        spot = analysis.hotspots[region.hotspot]
        assert x0 <= spot.x0 and y0 <= spot.y0 and spot.x1 <= x1 and spot.y1 <= y1

    vectors = embed_regions(pixels, regions, runtime)
    whole = runtime.embed(model_input(pixels, runtime.manifest)[None])[0]
    x0, y0, x1, y1 = regions[1].box
    crop = runtime.embed(model_input(pixels[y0:y1, x0:x1], runtime.manifest)[None])[0]
    assert np.allclose(vectors[0], whole, atol=1e-4) and np.allclose(vectors[1], crop, atol=1e-4)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)

    fracture, kl = result.tasks["fracture"], result.tasks["kl_grade"]
    assert np.isclose(fracture.probabilities[1], fracture.per_region[:, 1].max())
    assert fracture.per_region[fracture.driver, 1] == fracture.per_region[:, 1].max()
    assert np.isclose(kl.probabilities.sum(), 1.0) and kl.probabilities.shape == (5,)


# --- stored predictions -------------------------------------------------------------------------


def add_head(
    session, data_dir: Path, name: str, head: HeadWeights, embedding_model: str, active: bool = True
) -> ModelVersion:
    folder = head_folder(data_dir, name, "1")
    folder.mkdir(parents=True)
    head.save(folder / HEAD_FILE)
    version = ModelVersion(
        name=name,
        version="1",
        active=active,
        file_sha256={
            HEAD_FILE: sha256_bytes((folder / HEAD_FILE).read_bytes()),
            "embedding_model": embedding_model,
        },
    )
    session.add(version)
    session.flush()
    return version


def test_predictions_are_stored_once_with_regions_and_driver(
    workspace, demo: ErrorMapService, tmp_path: Path
) -> None:
    db, data_dir = workspace.db, Path(workspace.settings.data_dir)
    import_synthetic(db, data_dir, tmp_path / "synth", n=2, seed=3)
    sha = demo.runtime.manifest.sha256
    dim = demo.runtime.manifest.data["architecture"]["config"]["hidden_size"]
    head = random_head(dim, seed=1)
    with db.write() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
        version_id = add_head(s, data_dir, "head-fracture+kl_grade", head, sha).id
        add_head(s, data_dir, "head-other-model", random_head(dim), "0" * 64)
        add_head(s, data_dir, "head-inactive", random_head(dim), sha, active=False)
    analyses = {i: analyse_image(db, demo, i) for i in ids}
    image_id = max(ids, key=lambda i: len(analyses[i].result.hotspots))
    analysis = analyses[image_id]
    assert analysis.result.hotspots

    with pytest.raises(ValueError, match="pixels are"):
        region_guided_predictions(db, demo, image_id, [], (5, 5))

    runs = demo.runtime.session_runs
    stored = region_guided_predictions(
        db, demo, image_id, analysis.result.hotspots, analysis.result.error_map.shape
    )
    assert demo.runtime.session_runs == runs + 1
    assert [(p.task, p.model_version_id, p.created) for p in stored] == [
        ("fracture", version_id, True),
        ("kl_grade", version_id, True),
    ]

    with db.read() as s:
        image = s.get(Image, image_id)
        decoded = read_frame(Path(image.file_path), image.frame)
        rows = {
            p.id: p
            for p in s.scalars(select(Prediction).where(Prediction.model_version_id == version_id))
        }
        states = {st.name: st for st in task_states(s, image_id)}
    pixels = decoded.rgb if decoded.rgb is not None else decoded.values
    expected = region_guided(pixels, analysis.result.hotspots, head, demo.runtime)
    fracture = rows[stored[0].prediction_id]
    details = fracture.details
    assert details["method"] == REGION_METHOD and details["head"] == "head-fracture+kl_grade 1"
    assert details["temperature"] == 1.0
    assert [r["box"] for r in details["regions"]] == [list(r.box) for r in expected.regions]
    driver = expected.tasks["fracture"].driver
    assert details["driver"] == {
        "index": driver,
        "box": list(expected.regions[driver].box),
        "label": expected.regions[driver].label,
    }
    assert np.isclose(
        fracture.probabilities["fracture"], expected.tasks["fracture"].probabilities[1]
    )
    assert np.isclose(fracture.score, fracture.probabilities["fracture"])
    kl = rows[stored[1].prediction_id]
    assert np.allclose(
        [kl.probabilities[c] for c in KL.classes], expected.tasks["kl_grade"].probabilities
    )
    assert states["fracture"].method == REGION_METHOD
    assert np.isclose(states["fracture"].probability, fracture.probabilities["fracture"])

    runs = demo.runtime.session_runs
    again = region_guided_predictions(db, demo, image_id, analysis.result.hotspots)
    assert demo.runtime.session_runs == runs  # nothing missing: nothing read or embedded
    assert [(p.prediction_id, p.created) for p in again] == [
        (p.prediction_id, False) for p in stored
    ]
    assert again[0].details == stored[0].details
    with db.read() as s:
        count = len(
            s.scalars(select(Prediction.id).where(Prediction.model_version_id == version_id)).all()
        )
    assert count == 2
