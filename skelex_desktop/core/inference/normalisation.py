"""Error-map normalisation against what the model gets wrong on normal anatomy, and low-pass
comparison of reconstruction and input (numpy + OpenCV, no Qt).

`ErrorNormaliser`: a lookup table of the expected error of NORMAL images per bin of local
structure of the 8-bit model input (gradient magnitude after a small Gaussian, and grey level);
a map is divided by the expected error of each pixel's bin (plus a floor), so strong edges and
bone ends that the model always reconstructs badly stop dominating. The table is stored in the
package manifest under `errormap.normalisation` (see `to_json` / `from_json`); `MaeRuntime`
applies a declared one (`declared_normaliser`), and `model calibrate --structure-table` fits
one on the user's normal studies (`user_calibration.py`).

`lowpass_masked_error`: the masked error of Gaussian-blurred reconstruction and input, which
ignores fine texture and patch-border blockiness and keeps changes of local grey level.

`combine_passes`: the error map of a batch of passes as a package declares it (pooling,
low-pass, shifts), shared by `MaeRuntime.error_map` and the benches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from skelex_desktop.core.inference.errormap import (
    Shift,
    SumsFn,
    blended_error,
    expand_mask,
    masked_sums,
    shifted_sums,
    unpatchify,
)
from skelex_desktop.core.inference.preprocess import Preprocessing, denormalise

KIND = "structure_lut"
LOWPASS_KEY = "lowpass_sigma"
NORMALISATION_KEY = "normalisation"
FEATURES = ("gradient", "intensity")
GRADIENT_SIGMA = 1.0


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(
        np.ascontiguousarray(image, np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT
    )


def structure_features(gray_u8: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel features of an 8-bit gray image [S, S], both on a 0..1 scale."""
    import cv2

    gray = np.asarray(gray_u8, np.float32) / 255.0
    smooth = _gaussian(gray, GRADIENT_SIGMA)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return {"gradient": np.sqrt(gx * gx + gy * gy), "intensity": gray}


@dataclass
class ErrorNormaliser:
    """Expected normal-image error per bin of (gradient, intensity); `edges` are the inner bin
    edges of each feature, `table` [len(edges[0]) + 1, len(edges[1]) + 1]."""

    edges: tuple[np.ndarray, np.ndarray]
    table: np.ndarray
    floor: float
    data: str = ""

    def bins(self, gray_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats = structure_features(gray_u8)
        return (
            np.searchsorted(self.edges[0], feats["gradient"], side="right"),
            np.searchsorted(self.edges[1], feats["intensity"], side="right"),
        )

    def expected(self, gray_u8: np.ndarray) -> np.ndarray:
        """The expected normal error [S, S] of each pixel of `gray_u8`."""
        g, i = self.bins(gray_u8)
        return self.table[g, i].astype(np.float32)

    def apply(self, error: np.ndarray, gray_u8: np.ndarray) -> np.ndarray:
        """`error` divided by the expected normal error of its bin (plus the floor)."""
        return (error / (self.expected(gray_u8) + np.float32(self.floor))).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "features": list(FEATURES),
            "gradient_sigma": GRADIENT_SIGMA,
            "edges": [[float(v) for v in e] for e in self.edges],
            "table": [[float(v) for v in row] for row in self.table],
            "floor": float(self.floor),
            "data": self.data,
        }

    @classmethod
    def from_json(cls, spec: object) -> ErrorNormaliser | None:
        """The normaliser a manifest declares; None for an absent, unknown or malformed one
        (wrong kind, features or gradient sigma, edges that are not increasing finite
        vectors, a table of the wrong shape or with negative or non-finite values, a negative
        or non-finite floor)."""
        if not isinstance(spec, dict) or spec.get("kind") != KIND:
            return None
        try:
            features = spec.get("features")
            sigma = spec.get("gradient_sigma")
            if not isinstance(features, list) or features != list(FEATURES):
                return None
            if isinstance(sigma, bool) or not isinstance(sigma, int | float):
                return None
            if float(sigma) != GRADIENT_SIGMA or not isinstance(spec["edges"], list):
                return None
            edges = tuple(np.asarray(e, np.float32) for e in spec["edges"])
            table = np.asarray(spec["table"], np.float32)
            floor = spec["floor"]
            if isinstance(floor, bool) or not isinstance(floor, int | float):
                return None
            floor = float(floor)
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        if (
            len(edges) != 2
            or any(
                e.ndim != 1 or not np.isfinite(e).all() or (np.diff(e) <= 0).any() for e in edges
            )
            or table.shape != (edges[0].size + 1, edges[1].size + 1)
            or not np.isfinite(table).all()
            or (table < 0).any()
            or not np.isfinite(floor)
            or floor < 0
            or (table + np.float32(floor) <= 0).any()
        ):
            return None
        return cls((edges[0], edges[1]), table, floor, str(spec.get("data", "")))


def fit_normaliser(
    errors: Sequence[np.ndarray],
    grays: Sequence[np.ndarray],
    foregrounds: Sequence[np.ndarray],
    bins: tuple[int, int] = (16, 8),
    floor_fraction: float = 0.05,
    data: str = "",
) -> ErrorNormaliser:
    """Estimate the table from error maps of NORMAL images: per (gradient, intensity) bin the
    mean error inside the foreground; bin edges are quantiles of the pooled features; bins
    with fewer than 50 pixels take the pooled mean. Floor: `floor_fraction` x pooled mean."""
    feats = [structure_features(g) for g in grays]
    grad = np.concatenate([f["gradient"][m] for f, m in zip(feats, foregrounds, strict=True)])
    inten = np.concatenate([f["intensity"][m] for f, m in zip(feats, foregrounds, strict=True)])
    err = np.concatenate([e[m] for e, m in zip(errors, foregrounds, strict=True)]).astype(
        np.float64
    )
    if err.size == 0:
        raise ValueError("no foreground pixels to fit a normaliser on")
    edges = tuple(
        np.unique(np.quantile(v, np.linspace(0, 1, n + 1)[1:-1])).astype(np.float32)
        for v, n in ((grad, bins[0]), (inten, bins[1]))
    )
    g = np.searchsorted(edges[0], grad, side="right")
    i = np.searchsorted(edges[1], inten, side="right")
    shape = (edges[0].size + 1, edges[1].size + 1)
    flat = np.ravel_multi_index((g, i), shape)
    counts = np.bincount(flat, minlength=shape[0] * shape[1])
    sums = np.bincount(flat, weights=err, minlength=shape[0] * shape[1])
    pooled = float(err.mean())
    table = np.where(counts >= 50, sums / np.maximum(counts, 1), pooled).reshape(shape)
    return ErrorNormaliser(
        (edges[0], edges[1]), table.astype(np.float32), floor_fraction * pooled, data
    )


def declared_normaliser(errormap: dict[str, Any]) -> ErrorNormaliser | None:
    """The structure table a manifest's `errormap` declares under `normalisation`; None (the
    map is not divided, the behaviour before it existed) when absent, null or malformed."""
    return ErrorNormaliser.from_json(errormap.get(NORMALISATION_KEY))


def declared_lowpass(errormap: dict[str, Any]) -> float | None:
    """The low-pass sigma (model pixels) a manifest's `errormap` declares under
    `lowpass_sigma`; None (plain error, the behaviour before it existed) when absent, zero or
    not a finite positive number."""
    value = errormap.get(LOWPASS_KEY)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if np.isfinite(value) and 0 < value <= 64 else None


def lowpass_masked_sums(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    patch: int,
    prep: Preprocessing,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(sum over passes of the masked low-pass squared error, times masked), both [S, S]:
    see `lowpass_masked_error`."""
    target = denormalise(pixel_values, prep).mean(axis=0)
    recon = denormalise(unpatchify(reconstruction, patch, pixel_values.shape[0]), prep).mean(axis=1)
    masked = expand_mask(mask.astype(np.float32), patch)
    target_lp = _gaussian(target, sigma)
    per_pass = np.stack(
        [
            (_gaussian(np.where(m > 0, r, target), sigma) - target_lp) ** 2
            for r, m in zip(recon, masked, strict=True)
        ]
    )
    return (per_pass * masked).sum(axis=0), masked.sum(axis=0)


def lowpass_masked_error(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    patch: int,
    prep: Preprocessing,
    sigma: float,
) -> np.ndarray:
    """Like `errormap.masked_error`, but input and each pass's reconstruction are blurred by
    a Gaussian of `sigma` model pixels (on [0, 1], channels averaged) before differencing.

    Each pass is first pasted back onto the input (reconstruction where masked, input where
    visible): blurring the raw output would smear the untrained visible-patch outputs across
    patch borders and draw the patch grid into the map.
    """
    total, counts = lowpass_masked_sums(pixel_values, reconstruction, mask, patch, prep, sigma)
    return np.divide(total, counts, out=np.zeros_like(total), where=counts > 0).astype(np.float32)


def combine_passes(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    pass_shifts: list[Shift],
    patch: int,
    prep: Preprocessing,
    sigma: float | None,
    pooling: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(error map [S, S], times masked [S, S]) of passes run on `pixel_values` shifted by
    `pass_shifts`: pooling "reconstruction" blends the passes' reconstructions first
    (`errormap.blended_error`); "error" pools each pass's masked error
    (`errormap.shifted_sums` of `masked_sums`, or of `lowpass_masked_sums` with `sigma`)."""
    if pooling == "reconstruction":
        return blended_error(pixel_values, reconstruction, mask, pass_shifts, patch, prep, sigma)
    sums: SumsFn
    if sigma is None:
        sums = partial(masked_sums, patch=patch, prep=prep)
    else:
        sums = partial(lowpass_masked_sums, patch=patch, prep=prep, sigma=sigma)
    return shifted_sums(pixel_values, reconstruction, mask, pass_shifts, sums)
