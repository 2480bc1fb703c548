"""Error maps: complementary masks, reproducibility, full-resolution geometry, hotspots, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skelex_desktop.core.inference.errormap import (
    complementary_noise,
    masked_error,
    patch_groups,
    reference_noise,
    to_source,
)
from skelex_desktop.core.inference.hotspots import anomaly_score, find_hotspots, robust_z
from skelex_desktop.core.inference.preprocess import Geometry, Preprocessing, preprocess
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.settings import Settings
from tests.core.test_mae_helpers import copy_tiny_package, write_png


def _hf_mask(noise: np.ndarray, ratio: float) -> np.ndarray:
    """HF masking rule in numpy: the lowest int(L*(1-ratio)) noise values stay visible."""
    keep = int(noise.shape[1] * (1 - ratio))
    ranks = np.argsort(np.argsort(noise, axis=1), axis=1)
    return (ranks >= keep).astype(np.float32)


@pytest.mark.parametrize(
    ("grid", "passes", "ratio"),
    [(14, 4, 0.75), (4, 4, 0.75), (6, 2, 0.5), (12, 8, 0.75), (10, 4, 0.5)],
)
def test_complementary_masks_cover_every_patch_exactly(
    grid: int, passes: int, ratio: float
) -> None:
    noise = complementary_noise(grid, passes, ratio)
    mask = _hf_mask(noise, ratio)
    assert mask.shape == (passes, grid * grid)
    assert (mask.sum(axis=0) == passes * ratio).all()
    assert all(len(np.unique(row)) == row.size for row in noise)  # no ties: deterministic
    assert np.array_equal(noise, complementary_noise(grid, passes, ratio))


def test_four_passes_show_one_patch_of_every_2x2_block() -> None:
    groups = patch_groups(14, 4).reshape(14, 14)
    for r in range(0, 14, 2):
        for c in range(0, 14, 2):
            assert sorted(groups[r : r + 2, c : c + 2].ravel()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="do not tile"):
        complementary_noise(14, 3, 0.75)


def test_reference_noise_is_seeded() -> None:
    assert np.array_equal(reference_noise(196, 10, 3), reference_noise(196, 10, 3))
    assert not np.array_equal(reference_noise(196, 10, 3), reference_noise(196, 10, 4))


def test_masked_error_averages_only_over_masking_passes() -> None:
    prep = Preprocessing(size=32)
    x, _ = preprocess(np.full((32, 32), 100.0) + np.eye(32), prep)
    patches = np.zeros((2, 4, 16 * 16 * 3), np.float32)  # predicts normalised 0 = the mean
    mask = np.array([[1, 0, 0, 0], [1, 1, 0, 0]], np.float32)
    error, counts = masked_error(x, patches, mask, 16, prep)
    assert counts[0, 0] == 2 and counts[0, 20] == 1 and counts[20, 0] == 0
    assert (error[16:, :] == 0).all()  # never masked -> no error
    assert error[:16, :16].mean() > 0


def test_to_source_undoes_resize_and_letterbox() -> None:
    model_map = np.zeros((32, 32), np.float32)
    model_map[:, 16:] = 1.0
    full = to_source(model_map, Geometry((50, 80), 32, (0, 0, 32, 32)))
    assert full.shape == (50, 80)
    assert full[:, :38].max() < 0.5 and full[:, 42:].min() > 0.5
    letter = Geometry((50, 100), 32, (0, 8, 32, 24))
    model_map[:8] = 5.0  # padding: must not leak into the image
    full = to_source(model_map, letter)
    assert full.shape == (50, 100) and full.max() <= 1.0
    xs, ys = letter.to_source(np.array([0.0, 32.0]), np.array([8.0, 24.0]))
    assert list(xs) == [0, 100] and list(ys) == [0, 50]


def test_planted_blob_is_the_top_hotspot() -> None:
    rng = np.random.default_rng(0)
    error = rng.normal(0.02, 0.002, (120, 160)).astype(np.float32)
    error[40:52, 100:114] += 0.05  # the lesion
    error[90:93, 10:13] += 0.02  # a smaller, weaker one
    spots = find_hotspots(error, np.ones_like(error, bool))
    assert spots, "no hotspot found"
    top = spots[0]
    assert (top.x0, top.y0, top.x1, top.y1) == (100, 40, 114, 52)
    assert top.score > 10 and top.area == 12 * 14
    assert all(0 <= s.x0 < s.x1 <= 160 and 0 <= s.y0 < s.y1 <= 120 for s in spots)
    assert robust_z(error)[45, 105] > 10
    calibrated = find_hotspots(error, threshold=0.06)
    assert [(s.x0, s.y0) for s in calibrated] == [(100, 40)]
    assert anomaly_score(error, None, 99.9) > anomaly_score(error[:, :80], None, 99.9)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ErrorMapService:
    monkeypatch.setenv("SKELEX_BUNDLED_MODELS", str(tmp_path / "bundled"))
    copy_tiny_package(tmp_path / "data" / "models")
    return ErrorMapService(Settings(data_dir=tmp_path / "data", inference_threads=1), "tiny")


def test_error_map_has_source_shape_and_is_reproducible(
    service: ErrorMapService, tmp_path: Path
) -> None:
    png = write_png(tmp_path / "a.png", rows=90, cols=130)
    first = service.analyse_file(png, use_cache=False)
    second = service.analyse_file(png, use_cache=False)
    assert first.error_map.shape == (90, 130) and first.error_map.dtype == np.float32
    assert np.array_equal(first.error_map, second.error_map)
    assert first.passes == 4 and service.runtime.session_runs == 2  # one batched call each
    for spot in first.hotspots:
        assert 0 <= spot.x0 < spot.x1 <= 130 and 0 <= spot.y0 < spot.y1 <= 90
    ref = service.analyse_file(png, mode="reference", use_cache=False)
    assert ref.passes == 10 and ref.error_map.shape == (90, 130)
    assert service.runtime.session_runs == 3
    summary = first.summary()
    assert summary["shape"] == [90, 130] and summary["model"] == "tiny"


def test_dicom_input_maps_to_its_full_resolution(service: ErrorMapService, tmp_path: Path) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.PatientID = "DX", "P1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns = 70, 50
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(70 * 50, dtype=np.uint16).reshape(70, 50) % 4000).tobytes()
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = service.analyse_file(path)
    assert result.error_map.shape == (70, 50)


def test_second_analysis_comes_from_the_cache(service: ErrorMapService, tmp_path: Path) -> None:
    png = write_png(tmp_path / "b.png")
    first = service.analyse_file(png)
    runs = service.runtime.session_runs
    again = service.analyse_file(png)
    assert service.runtime.session_runs == runs  # no session run
    assert again.cached and not first.cached
    assert np.array_equal(again.error_map, first.error_map)
    assert again.hotspots == first.hotspots and again.score == first.score
    copy = tmp_path / "renamed.png"
    copy.write_bytes(png.read_bytes())
    assert service.analyse_file(copy).cached  # keyed by content, not by name
    cached = list((tmp_path / "data" / "cache" / "errormaps").iterdir())
    assert sorted(p.suffix for p in cached) == [".json", ".npy"]
    service.analyse_file(png, mode="reference")
    assert service.runtime.session_runs == runs + 1  # other parameters, other entry


def test_errormap_command_writes_map_and_hotspots(tmp_path: Path, monkeypatch, capsys) -> None:
    import json

    from skelex_desktop.cli import main

    monkeypatch.setenv("SKELEX_BUNDLED_MODELS", str(tmp_path / "bundled"))
    copy_tiny_package(tmp_path / "data" / "models")
    png = write_png(tmp_path / "c.png", rows=64, cols=48)
    args = [
        "--data-dir",
        str(tmp_path / "data"),
        "errormap",
        str(png),
        "--model",
        "tiny",
        "--out",
        str(tmp_path / "out" / "map.npy"),
        "--hotspots",
        str(tmp_path / "h.json"),
    ]
    assert main(args) == 0
    assert np.load(tmp_path / "out" / "map.npy").shape == (64, 48)
    summary = json.loads((tmp_path / "h.json").read_text())
    assert summary["shape"] == [64, 48] and summary["passes"] == 4
    assert "wrote" in capsys.readouterr().out
    assert main([*args[:4], "--model", "nope", "--out", str(tmp_path / "x.npy")]) == 1
    assert "no model package named 'nope'" in capsys.readouterr().err
    assert main([*args[:3], str(tmp_path / "missing.png"), *args[4:]]) == 1
    assert "not found" in capsys.readouterr().err


def test_foreground_is_the_anatomy_inside_the_collimated_field() -> None:
    from skelex_desktop.core.inference.errormap import foreground_mask

    rng = np.random.default_rng(1)
    image = rng.normal(230, 15, (224, 224))  # bright, noisy collimation border
    image[20:200, 30:210] = rng.normal(20, 3, (180, 180))  # exposed field: air
    image[40:180, 90:140] = rng.normal(120, 5, (140, 50))  # anatomy
    rgb = np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    mask = foreground_mask(rgb, Geometry((224, 224), 224, (0, 0, 224, 224)))
    anatomy = np.zeros((224, 224), bool)
    anatomy[40:180, 90:140] = True
    assert (mask & anatomy).sum() / anatomy.sum() > 0.95
    near = np.zeros((224, 224), bool)
    near[37:183, 87:143] = True  # the anatomy widened by 3 px: the mask keeps edges in
    assert not (mask & ~near).any()
    flat = np.full((224, 224, 3), 128, np.uint8)
    whole = foreground_mask(flat, Geometry((224, 224), 224, (0, 0, 224, 224)))
    assert whole[4:220, 4:220].all()  # all but the image border band
    assert not whole[:4].any() and not whole[:, 220:].any()


def test_foreground_keeps_a_limb_that_splits_the_air_and_drops_side_markers() -> None:
    """A limb crossing the whole field leaves air on both sides; both air regions bound the
    field (the hull of the larger one alone would leave the limb out). A bright side marker
    in the air is not anatomy."""
    from skelex_desktop.core.inference.errormap import foreground_mask

    rng = np.random.default_rng(2)
    image = rng.normal(230, 15, (224, 224))  # collimation border
    image[:, 20:204] = rng.normal(20, 3, (224, 184))  # air, from top to bottom edge
    image[:, 80:150] = rng.normal(110, 5, (224, 70))  # soft tissue crossing the field
    image[:, 100:130] = rng.normal(170, 5, (224, 30))  # bone
    image[30:40, 40:48] = 250  # "R" marker in the air
    rgb = np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    mask = foreground_mask(rgb, Geometry((224, 224), 224, (0, 0, 224, 224)))
    limb = np.zeros((224, 224), bool)
    limb[5:219, 80:150] = True
    assert (mask & limb).sum() / limb.sum() > 0.95
    assert not mask[30:40, 40:48].any()
    assert not mask[:, :15].any() and not mask[:, 210:].any()  # border stays out
