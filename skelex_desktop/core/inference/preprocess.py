"""Model input from decoded pixels, and the geometry to map model-space results back.

Default ("resize", identical to the SKELEX reference): per-image min-max to 8 bit (truncating,
as `astype(uint8)` does), grayscale replicated to RGB, plain resize to the model size with a
PIL-style antialiased bilinear filter (aspect ratio not kept), /255, ImageNet mean/std.
"letterbox" keeps the aspect ratio: the longer side is scaled to the model size and the image
is centred on black (0 in 8 bit) padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("resize", "letterbox")


@dataclass(frozen=True)
class Geometry:
    """Where the source image lies in the model input.

    `source_shape`: (rows, cols) of the full-resolution image. `content`: (x0, y0, x1, y1), the
    model-input pixels the image occupies (the whole input for "resize").
    """

    source_shape: tuple[int, int]
    model_size: int
    content: tuple[int, int, int, int]

    def to_source(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model-input coordinates (continuous, pixel edges) to full-resolution coordinates."""
        x0, y0, x1, y1 = self.content
        rows, cols = self.source_shape
        return (x - x0) * cols / (x1 - x0), (y - y0) * rows / (y1 - y0)


@dataclass(frozen=True)
class Preprocessing:
    """The preprocessing a model package declares in its manifest."""

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "resize"

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.resize!r}; expected one of {RESIZE_MODES}")


def minmax_to_u8(values: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling to uint8 (truncating); a constant image becomes zeros."""
    arr = np.asarray(values, dtype=np.float32)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return np.zeros(arr.shape, np.uint8)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return window_to_u8(np.nan_to_num(arr, nan=lo), lo, hi)


def window_to_u8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """`lo`..`hi` (hi > lo) scaled to 0..255 uint8, truncating, outside values clipped."""
    arr = np.asarray(values, dtype=np.float32)
    scaled = (arr - np.float32(lo)) / np.float32(hi - lo) * np.float32(255.0)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] matrix of PIL's antialiased bilinear (triangle) filter along one axis."""
    scale = in_size / out_size
    support_scale = max(scale, 1.0)
    support = support_scale
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((taps - center + 0.5) / support_scale), 0.0, None)
        total = w.sum()
        if total > 0:
            weights[i, lo:hi] = w / total
    return weights


_PRECISION_BITS = 22  # PIL's fixed-point precision for 8-bit resampling


def _resample_axis(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One PIL-style pass along `axis` in PIL's fixed-point arithmetic, computed exactly in
    float64 (integer coefficients keep every sum below 2**53)."""
    one = float(1 << _PRECISION_BITS)
    coeffs = np.floor(0.5 + _bilinear_weights(image.shape[axis], out_size) * one)
    moved = np.moveaxis(image, axis, -1).astype(np.float64)
    summed = moved @ coeffs.T + one / 2
    out = np.clip(np.floor(summed / one), 0, 255).astype(np.uint8)
    return np.moveaxis(out, -1, axis)


def resize_u8(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Antialiased bilinear resize of uint8 [H, W] or [H, W, C], as PIL's BILINEAR does it:
    horizontal pass, rounded to 8 bit, then vertical pass. Equal to PIL for most shapes and
    within one grey level otherwise (PIL may pick the other pass order)."""
    out = image
    if out.shape[1] != width:
        out = _resample_axis(out, width, 1)
    if out.shape[0] != height:
        out = _resample_axis(out, height, 0)
    return np.ascontiguousarray(out)


def to_model_u8(pixels: np.ndarray, prep: Preprocessing) -> tuple[np.ndarray, Geometry]:
    """The 8-bit RGB model input [S, S, 3] and its geometry, from gray [H, W] or RGB pixels."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    if pixels.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D gray or 3-D RGB image, got shape {pixels.shape}")
    rows, cols = int(pixels.shape[0]), int(pixels.shape[1])
    u8 = minmax_to_u8(pixels)
    size = prep.size
    if prep.resize == "resize":
        resized = resize_u8(u8, size, size)
        content = (0, 0, size, size)
    else:
        scale = size / max(rows, cols)
        w, h = max(1, round(cols * scale)), max(1, round(rows * scale))
        x0, y0 = (size - w) // 2, (size - h) // 2
        canvas = np.zeros((size, size, *u8.shape[2:]), np.uint8)
        canvas[y0 : y0 + h, x0 : x0 + w] = resize_u8(u8, w, h)
        resized, content = canvas, (x0, y0, x0 + w, y0 + h)
    if resized.ndim == 2:
        resized = np.repeat(resized[..., None], 3, axis=2)
    return resized, Geometry((rows, cols), size, content)


def normalise(rgb_u8: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """[S, S, 3] uint8 -> [3, S, S] float32 ImageNet-normalised."""
    x: np.ndarray = rgb_u8.astype(np.float32) * np.float32(1.0 / 255.0)
    x = (x - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess(pixels: np.ndarray, prep: Preprocessing) -> tuple[np.ndarray, Geometry]:
    """`pixel_values` [3, S, S] float32 and the geometry for mapping results back."""
    rgb, geometry = to_model_u8(pixels, prep)
    return normalise(rgb, prep), geometry


def denormalise(pixel_values: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """[..., 3, S, S] normalised -> [0, 1] (clipped), the inverse of `normalise`."""
    mean = np.asarray(prep.mean, np.float32)[:, None, None]
    std = np.asarray(prep.std, np.float32)[:, None, None]
    return np.clip(pixel_values * std + mean, 0.0, 1.0)
