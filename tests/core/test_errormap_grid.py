"""The patch-grid measure, and error maps whose passes run on shifted copies of the input."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from skelex_desktop.core.inference.errormap import (
    UNSHIFTED,
    declared_shifts,
    grid_strength,
    half_patch_shifts,
    masked_sums,
    shift_image,
    shift_of_passes,
    shifted_sums,
    unshift,
)
from skelex_desktop.core.inference.preprocess import Preprocessing, normalise

PREP = Preprocessing()


def smooth_field(seed: int, size: int = 224) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 3.0)


def blocks(seed: int, size: int = 224, patch: int = 16, offset: int = 0) -> np.ndarray:
    levels = np.random.default_rng(seed).random((size // patch + 1,) * 2).astype(np.float32)
    big = np.kron(levels, np.ones((patch, patch), np.float32))
    return big[patch - offset : patch - offset + size, patch - offset : patch - offset + size]


def test_grid_strength_is_about_one_without_a_grid_and_high_with_one_at_any_offset() -> None:
    smooth = smooth_field(0)
    assert grid_strength(smooth, 16) < 1.15
    for offset in (0, 5, 8):
        assert grid_strength(smooth + 0.2 * blocks(1, offset=offset), 16) > 2.0
    # pairs outside `where` do not count: a grid only in the left half, masked out
    half = smooth.copy()
    half[:, :112] += 0.2 * blocks(2)[:, :112]
    right = np.zeros(half.shape, bool)
    right[16:-16, 120:-16] = True
    assert grid_strength(half, 16, right) < 1.15 < grid_strength(half, 16)


def test_shift_and_unshift_are_inverse_where_defined() -> None:
    x = np.random.default_rng(3).random((3, 64, 64)).astype(np.float32)
    moved = shift_image(x, (8, 4))
    assert np.array_equal(moved[:, 8:, 4:], x[:, :-8, :-4])
    back = unshift(moved, (8, 4))
    assert np.array_equal(back[:, :-8, :-4], x[:, :-8, :-4])
    assert not back[:, -8:].any() and not back[:, :, -4:].any()
    assert shift_image(x, (0, 0)) is x


def test_declared_shifts_default_unshifted_and_parsed_strictly() -> None:
    assert declared_shifts({}, "complementary", 16) == UNSHIFTED
    assert declared_shifts({"shifts": [[0, 0], [8, 8]]}, "complementary", 16) == (
        (0, 0),
        (8, 8),
    )
    assert declared_shifts({"shifts": [[0, 0], [8, 8]]}, "reference", 16) == UNSHIFTED
    for bad in ([[0, 16]], [[0]], [["8", 8]], [[True, 0]], "8", [], [[-1, 0]]):
        assert declared_shifts({"shifts": bad}, "complementary", 16) == UNSHIFTED
    assert half_patch_shifts(16) == ((0, 0), (8, 8))
    assert shift_of_passes(4, ((0, 0), (8, 8))) == [(0, 0), (0, 0), (8, 8), (8, 8)]


def test_shifted_sums_pool_passes_in_the_unshifted_frame() -> None:
    """A reconstruction off by a constant c everywhere gives c^2 at every pixel some pass
    masked, whatever the shifts; a perfect one gives zero."""
    from skelex_desktop.core.inference.errormap import complementary_noise, patch_groups

    patch, grid = 8, 8
    size = patch * grid
    rng = np.random.default_rng(4)
    rgb = (rng.random((size, size, 3)) * 200).astype(np.uint8)
    x = normalise(rgb, PREP)
    noise = complementary_noise(grid, 4, 0.75)
    mask = (noise >= np.sort(noise, axis=1)[:, [grid * grid // 4]]).astype(np.float32)
    assert patch_groups(grid, 4).shape == (grid * grid,)
    pass_shifts = shift_of_passes(4, half_patch_shifts(patch))

    def patchify(img: np.ndarray) -> np.ndarray:
        c = img.shape[0]
        p = img.reshape(c, grid, patch, grid, patch).transpose(1, 3, 2, 4, 0)
        return p.reshape(grid * grid, patch * patch * c)

    from functools import partial

    sums = partial(masked_sums, patch=patch, prep=PREP)
    std = np.asarray(PREP.std, np.float32)[:, None, None]
    c = 0.05
    perfect = np.stack([patchify(shift_image(x, s)) for s in pass_shifts])
    offset = np.stack([patchify(shift_image(x, s) + c / std) for s in pass_shifts])
    error, counts = shifted_sums(x, perfect, mask, pass_shifts, sums)
    assert counts.min() >= 1 and np.abs(error).max() < 1e-10
    clean = (rgb.astype(np.float32) / 255 + c <= 1).all(axis=2)  # no clipping at 1.0
    error, _ = shifted_sums(x, offset, mask, pass_shifts, sums)
    assert np.allclose(error[clean], c * c, rtol=1e-3)


def test_a_package_declaring_shifts_runs_them_and_keeps_the_map_whole() -> None:
    from skelex_desktop.core.inference.package import verify_package
    from skelex_desktop.core.inference.service import MaeRuntime
    from skelex_desktop.core.synth import generate_image

    root = Path(__file__).parents[2] / "models" / "skelex-demo"
    if not (root / "manifest.json").is_file():
        pytest.skip("bundled demo package not present")
    manifest = verify_package(root)
    shifted = copy.copy(manifest)
    shifted.data = copy.deepcopy(manifest.data)
    shifted.data["errormap"]["shifts"] = [[0, 0], [8, 8]]
    pixels = generate_image(5, 2, size=256).monochrome2()
    plain = MaeRuntime(manifest).error_map(pixels)
    moved = MaeRuntime(shifted).error_map(pixels)
    assert plain.passes == moved.passes == 4
    assert moved.counts.min() >= 1  # every pixel masked by some pass
    assert not np.allclose(plain.model_map, moved.model_map)
    # the map stays on the image: strongly correlated with the unshifted one
    assert np.corrcoef(plain.model_map.ravel(), moved.model_map.ravel())[0, 1] > 0.6
