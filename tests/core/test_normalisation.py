"""Error-map normalisation: the structure lookup table, the low-pass error, the manifest switch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skelex_desktop.core.inference.errormap import complementary_noise, masked_error
from skelex_desktop.core.inference.normalisation import (
    ErrorNormaliser,
    declared_lowpass,
    declared_normaliser,
    fit_normaliser,
    lowpass_masked_error,
    structure_features,
)
from skelex_desktop.core.inference.package import read_manifest
from skelex_desktop.core.inference.preprocess import Preprocessing, normalise, to_model_u8
from skelex_desktop.core.inference.service import MaeRuntime
from skelex_desktop.core.synth import generate_image
from tests.core.test_mae_helpers import copy_tiny_package

PREP = Preprocessing(size=32)


def _ramp_image() -> np.ndarray:
    """Left half flat dark, right half a steep ramp: two gradient regimes."""
    img = np.zeros((32, 32), np.uint8)
    img[:, 16:] = np.linspace(0, 255, 16, dtype=np.uint8)[None]
    return img


def test_features_are_flat_on_flat_and_steep_on_ramp() -> None:
    f = structure_features(_ramp_image())
    assert f["gradient"][:, :10].max() < 1e-6
    assert f["gradient"][:, 20:28].min() > 0.05
    assert f["intensity"].max() == pytest.approx(1.0)


def _texture() -> np.ndarray:
    import cv2

    noise = np.random.default_rng(4).random((32, 32)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)


def test_fitted_table_divides_out_structure_dependent_error() -> None:
    gray = _texture()
    grad = structure_features(gray)["gradient"]
    edge = np.float32(np.quantile(grad, 0.5))  # the single inner gradient edge of 2 bins
    error = np.where(grad >= edge, 0.5, 0.05).astype(np.float32)  # edges err 10x more
    fg = np.ones_like(gray, bool)
    norm = fit_normaliser([error] * 3, [gray] * 3, [fg] * 3, bins=(2, 1), floor_fraction=0.0)
    assert norm.table.shape == (2, 1)
    assert norm.table[:, 0].tolist() == pytest.approx([0.05, 0.5])
    assert np.allclose(norm.apply(error, gray), 1.0, atol=1e-5)
    # a finding (twice the expected error) stands out the same on flat and steep structure
    lesion = error * np.where(np.arange(32)[:, None] < 16, 2.0, 1.0).astype(np.float32)
    out = norm.apply(lesion, gray)
    assert np.allclose(out[:16], 2.0, atol=1e-4) and np.allclose(out[16:], 1.0, atol=1e-4)


def test_normaliser_json_round_trip_and_refusals() -> None:
    gray = _ramp_image()
    err = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    norm = fit_normaliser([err], [gray], [np.ones_like(gray, bool)], bins=(3, 2), data="t")
    spec = json.loads(json.dumps(norm.to_json()))
    back = ErrorNormaliser.from_json(spec)
    assert back is not None and back.data == "t"
    assert np.allclose(back.apply(err, gray), norm.apply(err, gray))
    assert ErrorNormaliser.from_json(None) is None
    assert ErrorNormaliser.from_json({"kind": "something_else"}) is None
    assert ErrorNormaliser.from_json({**spec, "table": [[1.0]]}) is None
    assert ErrorNormaliser.from_json({**spec, "features": ["gradient"]}) is None
    malformed = [
        [spec],
        {**spec, "features": 3},
        {**spec, "gradient_sigma": "1"},
        {**spec, "gradient_sigma": [1.0]},
        {**spec, "edges": "ab"},
        {**spec, "edges": [spec["edges"][0][::-1], spec["edges"][1]]},  # not increasing
        {**spec, "edges": [[float("nan"), 1.0], spec["edges"][1]]},
        {**spec, "table": "x"},
        {**spec, "table": [[-1.0] * len(row) for row in spec["table"]]},
        {**spec, "table": [[float("inf")] * len(row) for row in spec["table"]]},
        {**spec, "floor": float("nan")},
        {**spec, "floor": True},
        {**spec, "floor": "0.1"},
        {k: v for k, v in spec.items() if k != "floor"},
    ]
    assert [ErrorNormaliser.from_json(m) for m in malformed] == [None] * len(malformed)
    with pytest.raises(ValueError):
        fit_normaliser([err], [gray], [np.zeros_like(gray, bool)])


def test_declared_lowpass_accepts_only_a_positive_number() -> None:
    assert declared_lowpass({}) is None
    assert declared_lowpass({"lowpass_sigma": None}) is None
    assert declared_lowpass({"lowpass_sigma": 0}) is None
    assert declared_lowpass({"lowpass_sigma": "2"}) is None
    assert declared_lowpass({"lowpass_sigma": True}) is None
    assert declared_lowpass({"lowpass_sigma": float("nan")}) is None
    assert declared_lowpass({"lowpass_sigma": 2}) == 2.0


def _passes(x: np.ndarray, rec_image: np.ndarray, patch: int = 8) -> tuple[np.ndarray, ...]:
    """Patchify a [K, 3, S, S] reconstruction (HF layout) and complementary masks."""
    k, c, s, _ = rec_image.shape
    g = s // patch
    rec = rec_image.reshape(k, c, g, patch, g, patch).transpose(0, 2, 4, 3, 5, 1)
    noise = complementary_noise(g, k, 0.75)
    order = np.argsort(np.argsort(noise, axis=1), axis=1)
    mask = (order >= int(g * g * 0.25)).astype(np.float32)
    return rec.reshape(k, g * g, patch * patch * c), mask


def test_lowpass_error_ignores_fine_texture_but_keeps_a_blob() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.1, (3, 32, 32)).astype(np.float32)
    texture = x[None] + rng.normal(0, 0.5, (4, 3, 32, 32)).astype(np.float32)  # zero-mean noise
    rec, mask = _passes(x, texture)
    plain, _ = masked_error(x, rec, mask, 8, PREP)
    low = lowpass_masked_error(x, rec, mask, 8, PREP, 2.0)
    assert low.mean() < 0.2 * plain.mean()
    blob = np.repeat(x[None], 4, axis=0)
    blob[:, :, 10:20, 10:20] += 1.5  # a coarse grey-level change survives the blur
    rec, mask = _passes(x, blob)
    low = lowpass_masked_error(x, rec, mask, 8, PREP, 2.0)
    assert low[13:17, 13:17].min() > 10 * low[:4, :4].max()
    exact = lowpass_masked_error(x, *_passes(x, np.repeat(x[None], 4, axis=0)), 8, PREP, 2.0)
    assert np.abs(exact).max() < 1e-6


def test_lowpass_error_ignores_what_the_model_outputs_for_visible_patches() -> None:
    """Only masked patches are reconstructions; garbage on visible ones must not leak across
    patch borders through the blur (it would draw the patch grid into the map)."""
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.1, (3, 32, 32)).astype(np.float32)
    perfect = np.repeat(x[None], 4, axis=0)
    rec, mask = _passes(x, perfect)
    pixel_mask = np.repeat(np.repeat(mask.reshape(4, 4, 4), 8, axis=1), 8, axis=2)
    garbage = perfect + 3.0 * (pixel_mask == 0)[:, None].astype(np.float32)
    rec_garbage, _ = _passes(x, garbage)
    low = lowpass_masked_error(x, rec_garbage, mask, 8, PREP, 2.0)
    assert np.abs(low).max() < 1e-6


def test_runtime_applies_only_what_the_manifest_declares(tmp_path) -> None:  # noqa: ANN001
    folder = copy_tiny_package(tmp_path)
    manifest = read_manifest(folder)
    pixels = generate_image(5, 0, size=128, abnormal=False).monochrome2()
    plain = MaeRuntime(manifest).error_map(pixels).model_map
    manifest.data["errormap"] = {**manifest.errormap, "lowpass_sigma": "unknown"}
    assert np.array_equal(MaeRuntime(manifest).error_map(pixels).model_map, plain)
    manifest.data["errormap"] = {**manifest.errormap, "lowpass_sigma": 2.0}
    low = MaeRuntime(manifest).error_map(pixels).model_map
    assert low.shape == plain.shape and not np.allclose(low, plain)


def test_runtime_divides_by_a_declared_table_and_is_bit_identical_without_one(
    tmp_path,  # noqa: ANN001
) -> None:
    folder = copy_tiny_package(tmp_path)
    manifest = read_manifest(folder)
    # the plain complementary map (per-pass errors pooled), which tables were fitted on
    manifest.data["errormap"] = {**manifest.errormap, "pooling": "error"}
    errormap = manifest.errormap
    pixels = generate_image(5, 1, size=128, abnormal=False).monochrome2()
    runtime = MaeRuntime(manifest)
    assert runtime.normaliser is None and "normalisation" not in errormap
    # the map as computed before tables existed, step by step
    prep = manifest.preprocessing
    rgb, _ = to_model_u8(pixels, prep)
    x = normalise(rgb, prep)
    noise = complementary_noise(runtime.grid, 4, manifest.mask_ratio)
    rec, mask = runtime.reconstruct(np.broadcast_to(x, (4, *x.shape)), noise)
    reference, _ = masked_error(x, rec, mask, manifest.patch_size, prep)
    assert np.array_equal(runtime.error_map(pixels).model_map, reference)

    gray = rgb[..., 0]
    spec = fit_normaliser([reference], [gray], [np.ones_like(gray, bool)], bins=(3, 2)).to_json()
    for bad in (None, {}, "structure_lut", {**spec, "kind": "other"}, {**spec, "floor": -1.0}):
        manifest.data["errormap"] = {**errormap, "normalisation": bad}
        assert declared_normaliser(manifest.errormap) is None
        other = MaeRuntime(manifest)
        assert other.normaliser is None
        assert np.array_equal(other.error_map(pixels).model_map, reference)

    manifest.data["errormap"] = {**errormap, "normalisation": spec}
    declared = MaeRuntime(manifest)
    table = declared.normaliser
    assert table is not None  # parsed once, when the runtime is built
    expected = ErrorNormaliser.from_json(spec).apply(reference, gray)
    assert np.array_equal(declared.error_map(pixels).model_map, expected)
    assert declared.normaliser is table
    assert not np.allclose(expected, reference)
    # with a low-pass declared too, the table divides the low-passed error
    manifest.data["errormap"] = {**errormap, "normalisation": spec, "lowpass_sigma": 2.0}
    low = lowpass_masked_error(x, rec, mask, manifest.patch_size, prep, 2.0)
    both = MaeRuntime(manifest).error_map(pixels).model_map
    assert np.array_equal(both, ErrorNormaliser.from_json(spec).apply(low, gray))
