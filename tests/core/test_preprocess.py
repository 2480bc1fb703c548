"""Preprocessing: identical to the reference (min-max 8 bit, RGB, PIL bilinear, ImageNet), and
the aspect-preserving letterbox with its geometry."""

from __future__ import annotations

import numpy as np
import pytest

from skelex_desktop.core.inference.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocessing,
    denormalise,
    minmax_to_u8,
    preprocess,
    resize_u8,
    to_model_u8,
)


def _radiograph(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    return 1000 + 900 * np.sin(x / 7.0) * np.cos(y / 11.0) + rng.normal(0, 50, (rows, cols))


def test_minmax_truncates_to_8_bit_like_the_reference() -> None:
    values = np.array([[100.0, 150.0], [200.0, 300.0]], np.float32)
    expected = np.clip((values - 100) / 200 * 255.0, 0, 255).astype(np.uint8)
    assert np.array_equal(minmax_to_u8(values), expected)
    assert (minmax_to_u8(np.full((3, 3), 7.0)) == 0).all()
    with_nan = values.copy()
    with_nan[0, 0] = np.nan
    assert minmax_to_u8(with_nan)[1, 1] == 255


@pytest.mark.parametrize("shape", [(300, 517), (1000, 700), (80, 100), (224, 224)])
def test_resize_matches_pil_bilinear(shape: tuple[int, int]) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    u8 = minmax_to_u8(_radiograph(*shape))
    expected = np.asarray(
        image_mod.fromarray(u8).convert("RGB").resize((224, 224), image_mod.BILINEAR)
    )
    ours = resize_u8(np.repeat(u8[..., None], 3, axis=2), 224, 224)
    assert np.abs(expected.astype(int) - ours).max() <= 1
    assert (expected == ours).mean() > 0.99


def test_pixel_values_match_the_reference_processor() -> None:
    transformers = pytest.importorskip("transformers")
    image_mod = pytest.importorskip("PIL.Image")
    pil_processor = getattr(transformers, "ViTImageProcessorPil", transformers.ViTImageProcessor)
    processor = pil_processor(
        size={"height": 224, "width": 224},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    raw = _radiograph(333, 250)
    reference = processor(
        images=image_mod.fromarray(minmax_to_u8(raw)).convert("RGB"), return_tensors="np"
    )["pixel_values"][0]
    ours, geometry = preprocess(raw, Preprocessing())
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    assert np.abs(reference - ours).max() <= 1.01 / 255 / min(IMAGENET_STD)
    assert geometry.content == (0, 0, 224, 224) and geometry.source_shape == (333, 250)
    assert np.allclose(denormalise(ours, Preprocessing())[0], ours[0] * 0.229 + 0.485, atol=1e-6)


def test_letterbox_keeps_aspect_and_pads_black() -> None:
    prep = Preprocessing(size=224, resize="letterbox")
    rgb, geometry = to_model_u8(_radiograph(100, 200) + 5000, prep)
    assert geometry.content == (0, 56, 224, 168)
    assert (rgb[:56] == 0).all() and (rgb[168:] == 0).all()
    assert rgb[56:168].mean() > 50
    xs, ys = geometry.to_source(np.array([0.0, 224.0]), np.array([56.0, 168.0]))
    assert list(xs) == [0, 200] and list(ys) == [0, 100]
    tall = to_model_u8(_radiograph(300, 100), prep)[1]
    assert tall.content == (74, 0, 149, 224)


def test_rgb_input_and_bad_modes() -> None:
    rgb = np.stack([_radiograph(50, 60, s) for s in range(3)], axis=-1)
    pixels, geometry = preprocess(rgb, Preprocessing(size=32))
    assert pixels.shape == (3, 32, 32) and geometry.source_shape == (50, 60)
    assert not np.allclose(pixels[0], pixels[1])
    with pytest.raises(ValueError, match="resize mode"):
        Preprocessing(resize="crop")
