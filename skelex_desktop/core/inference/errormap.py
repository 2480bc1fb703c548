"""Zero-shot error maps: masked reconstruction error averaged over several masks.

Complementary mode (default): K deterministic masks at ratio r with K*(1-r) an integer; every
patch is visible in exactly K*(1-r) passes and masked in exactly K*r (K=4, r=0.75: masked 3
times, visible once). For K a square whose root divides the patch grid, the visible patches
form a regular lattice (each 2x2 block of patches shows one patch per pass for K=4); otherwise
patches are split into K seeded, balanced groups. All passes run in ONE batched call.
Reference mode: N seeded uniform-random masks, as the SKELEX reference (N=10).

Pooling (complementary mode), `errormap.pooling`:
- "reconstruction" (the default since issue #20): the passes' reconstructions of the patches
  they masked are averaged per pixel (weighted by a per-patch Hann window, which only matters
  when passes run on shifted inputs), and the error is that of the one blended reconstruction
  (channel mean on [0, 1]; low-pass first when declared). No pass's error is cut at its patch
  borders, so the map shows no patch grid (docs/LOCALISATION.md).
- "error" (plain complementary, the behaviour before): per pass, de-normalise input and
  reconstruction to [0, 1] (clipped), squared difference averaged over RGB, kept only where
  the patch was masked; per pixel the sum is divided by the number of passes that masked it.
  The set of passes pooled changes at every patch border, which draws the 16-px grid.
Reference mode always pools errors, as the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelex_desktop.core.inference.exposed_field import detect_field
from skelex_desktop.core.inference.preprocess import Geometry, Preprocessing, denormalise

MODES = ("complementary", "reference")
# part of cached maps' keys and of stored predictions' state: bump when `foreground_mask` or
# the default map changes (4: pooled reconstructions, issue #20)
FOREGROUND_VERSION = 4
POOLING_KEY = "pooling"
POOLINGS = ("reconstruction", "error")
DEFAULT_POOLING = "reconstruction"


def patch_groups(grid: int, passes: int, seed: int = 0) -> np.ndarray:
    """[L] group (0..passes-1) of every patch, each group the same size when L allows."""
    root = math.isqrt(passes)
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    if root * root == passes and grid % root == 0:
        return ((rows % root) * root + (cols % root)).astype(np.int64)
    order = np.random.default_rng(seed).permutation(grid * grid)
    groups = np.empty(grid * grid, dtype=np.int64)
    groups[order] = np.arange(grid * grid) % passes
    return groups


def complementary_noise(grid: int, passes: int = 4, mask_ratio: float = 0.75) -> np.ndarray:
    """[passes, L] float32 noise whose HF masking gives complementary masks.

    Pass k keeps the groups k*m .. k*m+m-1 (mod passes), m = passes*(1-mask_ratio): the lowest
    noise values; a fraction of the patch index breaks ties so the order is unique.
    """
    visible_groups = passes * (1.0 - mask_ratio)
    m = round(visible_groups)
    if m < 1 or abs(visible_groups - m) > 1e-6:
        raise ValueError(
            f"{passes} complementary passes at mask ratio {mask_ratio} do not tile: "
            "passes * (1 - mask_ratio) must be a whole number >= 1"
        )
    length = grid * grid
    groups = patch_groups(grid, passes)
    tiebreak = np.arange(length) / length
    noise = np.stack([((groups - k * m) % passes) + tiebreak for k in range(passes)])
    return (noise / passes).astype(np.float32)


def reference_noise(length: int, passes: int = 10, seed: int = 0) -> np.ndarray:
    """[passes, L] seeded uniform noise: independent random masks, as the reference."""
    return np.random.default_rng(seed).random((passes, length), dtype=np.float32)


def unpatchify(patches: np.ndarray, patch: int, channels: int = 3) -> np.ndarray:
    """[K, L, P*P*C] (HF order) -> [K, C, S, S]."""
    k, length, _ = patches.shape
    grid = math.isqrt(length)
    x = patches.reshape(k, grid, grid, patch, patch, channels).transpose(0, 5, 1, 3, 2, 4)
    return x.reshape(k, channels, grid * patch, grid * patch)


def expand_mask(mask: np.ndarray, patch: int) -> np.ndarray:
    """[K, L] patch mask -> [K, S, S] pixel mask."""
    k, length = mask.shape
    grid = math.isqrt(length)
    return np.repeat(np.repeat(mask.reshape(k, grid, grid), patch, axis=1), patch, axis=2)


def masked_sums(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    patch: int,
    prep: Preprocessing,
) -> tuple[np.ndarray, np.ndarray]:
    """(sum over passes of the masked squared error [S, S], times masked [S, S]) for one
    image: `pixel_values` [3, S, S] normalised; `reconstruction` [K, L, P*P*3]; `mask` [K, L].
    """
    target = denormalise(pixel_values, prep)[None]
    recon = denormalise(unpatchify(reconstruction, patch, pixel_values.shape[0]), prep)
    per_pass = ((recon - target) ** 2).mean(axis=1)
    masked = expand_mask(mask.astype(np.float32), patch)
    return (per_pass * masked).sum(axis=0), masked.sum(axis=0)


def masked_error(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    patch: int,
    prep: Preprocessing,
) -> tuple[np.ndarray, np.ndarray]:
    """(error map [S, S] float32, times each pixel was masked [S, S]) for one image.

    `pixel_values` [3, S, S] normalised; `reconstruction` [K, L, P*P*3]; `mask` [K, L].
    """
    total, counts = masked_sums(pixel_values, reconstruction, mask, patch, prep)
    error = np.divide(total, counts, out=np.zeros_like(total), where=counts > 0)
    return error.astype(np.float32), counts.astype(np.float32)


# Shifted passes: the patch grid of a ViT draws itself into a masked-reconstruction map (every
# patch is reconstructed as a block). Passes can run on copies of the image translated by
# given offsets; their reconstructions (pooling "reconstruction", weighted by `patch_window`) or
# errors (pooling "error") are moved back and pooled, so patch borders fall at different
# pixels in different passes. The input is just the pixels: no new graph. A package opts in
# with `errormap.shifts` (e.g. [[0, 0], [8, 8]]: half the passes shifted by half a patch);
# without it (and in reference mode) nothing is shifted: on the pydicom-data radiographs the
# shifted maps showed no less grid (docs/LOCALISATION.md), so the default stays unshifted.
SHIFTS_KEY = "shifts"
Shift = tuple[int, int]
SumsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
UNSHIFTED: tuple[Shift, ...] = ((0, 0),)


def half_patch_shifts(patch: int) -> tuple[Shift, ...]:
    """Unshifted and half a patch diagonally: the 16-px grid's fundamental cancels."""
    return ((0, 0), (patch // 2, patch // 2))


def declared_shifts(errormap: dict[str, Any], mode: str, patch: int) -> tuple[Shift, ...]:
    """The (rows, cols) offsets in model pixels a map's passes are split over: a declared
    `shifts` list of integer pairs between 0 and one patch (complementary mode only);
    otherwise (absent, malformed, reference mode) `UNSHIFTED`."""
    value = errormap.get(SHIFTS_KEY)
    if mode != "complementary" or not isinstance(value, list) or not value:
        return UNSHIFTED
    out: list[Shift] = []
    for pair in value:
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            or not all(0 <= v < patch for v in pair)
        ):
            return UNSHIFTED
        out.append((int(pair[0]), int(pair[1])))
    return tuple(out)


def shift_of_passes(passes: int, shifts: tuple[Shift, ...]) -> list[Shift]:
    """The offset of each pass: the passes split into len(shifts) consecutive groups (with
    complementary noise, pass groups 0-1 and 2-3 of 4 each see every patch masked)."""
    groups = min(len(shifts), passes)
    return [shifts[k * groups // passes] for k in range(passes)]


def shift_image(x: np.ndarray, shift: Shift) -> np.ndarray:
    """[..., S, S] translated down/right by `shift` pixels: out[i, j] = x[i - dy, j - dx];
    the uncovered top rows / left columns are mirrored from the image."""
    dy, dx = shift
    if dy == 0 and dx == 0:
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(dy, 0), (dx, 0)]
    rows, cols = x.shape[-2:]
    return np.pad(x, pad, mode="reflect")[..., :rows, :cols]


def unshift(a: np.ndarray, shift: Shift) -> np.ndarray:
    """The inverse of `shift_image` for a map [..., S, S]: out[i, j] = a[i + dy, j + dx];
    pixels that left the shifted image (the last dy rows, dx columns) are 0."""
    dy, dx = shift
    if dy == 0 and dx == 0:
        return a
    rows, cols = a.shape[-2:]
    out = np.zeros_like(a)
    out[..., : rows - dy, : cols - dx] = a[..., dy:, dx:]
    return out


def shifted_sums(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    pass_shifts: list[Shift],
    sums: SumsFn,
) -> tuple[np.ndarray, np.ndarray]:
    """(error map, counts) in the unshifted frame of passes run on shifted inputs: `sums(x,
    rec, mask)` (e.g. `masked_sums` with the patch size bound) per group of passes sharing an
    offset, on that group's shifted input, moved back and pooled."""
    total = np.zeros(pixel_values.shape[-2:], np.float32)
    counts = np.zeros_like(total)
    for shift in dict.fromkeys(pass_shifts):
        rows = [k for k, s in enumerate(pass_shifts) if s == shift]
        t, c = sums(shift_image(pixel_values, shift), reconstruction[rows], mask[rows])
        total += unshift(np.asarray(t, np.float32), shift)
        counts += unshift(np.asarray(c, np.float32), shift)
    error = np.divide(total, counts, out=np.zeros_like(total), where=counts > 0)
    return error.astype(np.float32), counts


def declared_pooling(errormap: dict[str, Any], mode: str) -> str:
    """How a map pools its passes: "error" in reference mode and where the package declares
    `pooling: "error"`; otherwise (absent, unknown) `DEFAULT_POOLING`."""
    if mode != "complementary":
        return "error"
    value = errormap.get(POOLING_KEY)
    return value if isinstance(value, str) and value in POOLINGS else DEFAULT_POOLING


def patch_window(patch: int) -> np.ndarray:
    """[P, P] 2-D Hann window of one patch: ~1 in the middle, ~0 at the border, never 0.
    Copies of it offset by half a patch along rows, columns and both sum to 1 everywhere,
    so passes on those four offsets blend without seams."""
    h = np.sin(np.pi * (np.arange(patch) + 0.5) / patch) ** 2
    return np.outer(h, h).astype(np.float32)


def blended_reconstruction(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    pass_shifts: list[Shift],
    patch: int,
    prep: Preprocessing,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blend [S, S], target [S, S], times masked [S, S]) in the unshifted frame, gray on
    [0, 1] (channel mean, clipped): each pixel's blend is the mean of the reconstructions of
    the passes that masked it, each weighted by `patch_window` at the pixel's place in its
    patch (passes on one offset weigh the same, so without shifts it is the plain mean).
    `reconstruction` [K, L, P*P*C], `mask` [K, L], `pass_shifts` the offset of each pass."""
    size = pixel_values.shape[-2:]
    total = np.zeros(size, np.float64)
    weight = np.zeros(size, np.float64)
    counts = np.zeros(size, np.float32)
    reps = (-(-size[0] // patch), -(-size[1] // patch))
    window = np.tile(patch_window(patch), reps)[: size[0], : size[1]]
    channels = pixel_values.shape[0]
    for shift in dict.fromkeys(pass_shifts):
        rows = [k for k, s in enumerate(pass_shifts) if s == shift]
        recon = denormalise(unpatchify(reconstruction[rows], patch, channels), prep).mean(axis=1)
        masked = expand_mask(mask[rows].astype(np.float32), patch)
        total += unshift((recon * masked).sum(axis=0) * window, shift)
        weight += unshift(masked.sum(axis=0) * window, shift)
        counts += unshift(masked.sum(axis=0), shift)
    target = denormalise(pixel_values, prep).mean(axis=0)
    blend = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), target)
    return blend.astype(np.float32), target.astype(np.float32), counts


def blended_error(
    pixel_values: np.ndarray,
    reconstruction: np.ndarray,
    mask: np.ndarray,
    pass_shifts: list[Shift],
    patch: int,
    prep: Preprocessing,
    sigma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(error map [S, S] float32, times masked [S, S]) of the blended reconstruction
    (`blended_reconstruction`): its squared difference from the input, both blurred by a
    Gaussian of `sigma` model pixels first when given. Pixels no pass masked score 0."""
    blend, target, counts = blended_reconstruction(
        pixel_values, reconstruction, mask, pass_shifts, patch, prep
    )
    if sigma:
        import cv2

        blend, target = (
            cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            for a in (blend, target)
        )
    error = np.where(counts > 0, (blend - target) ** 2, 0.0)
    return error.astype(np.float32), counts


def grid_phases(error: np.ndarray, patch: int, where: np.ndarray | None = None) -> np.ndarray:
    """[patch] the mean |difference| between neighbouring pixels (along rows and along columns)
    at each phase of a grid of period `patch` (phase p: pixels p and p + 1 of a patch; p =
    patch - 1 straddles the border). Only pairs of pixels both in `where` count; without it,
    all but the outer patch. NaN for a phase without pairs."""
    e = np.asarray(error, np.float64)
    if where is None:
        where = np.zeros(e.shape, bool)
        where[patch:-patch, patch:-patch] = True
    sums, counts = np.zeros(patch), np.zeros(patch)
    for a, m in ((e, where), (e.T, where.T)):
        both = m[:, 1:] & m[:, :-1]
        diff = np.abs(np.diff(a, axis=1))
        phase = np.broadcast_to(np.arange(diff.shape[1]) % patch, diff.shape)
        sums += np.bincount(phase[both], weights=diff[both], minlength=patch)
        counts += np.bincount(phase[both], minlength=patch)
    return np.divide(sums, counts, out=np.full(patch, np.nan), where=counts > 0)


def grid_strength(error: np.ndarray, patch: int, where: np.ndarray | None = None) -> float:
    """How much a map [S, S] shows a grid of period `patch`: of `grid_phases`, the largest
    over the median. About 1 without a grid, whatever its offset; a map made of blocks scores
    well above. 1.0 when a phase has no pairs or the median is 0."""
    phases = grid_phases(error, patch, where)
    if np.isnan(phases).any():
        return 1.0
    median = float(np.median(phases))
    return float(phases.max() / median) if median > 0 else 1.0


def to_source(model_map: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A model-space map [S, S] resampled (bilinear) onto the full-resolution image grid,
    undoing the plain resize or the letterbox."""
    import cv2

    x0, y0, x1, y1 = geometry.content
    rows, cols = geometry.source_shape
    content = np.ascontiguousarray(model_map[y0:y1, x0:x1], dtype=np.float32)
    return cv2.resize(content, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _otsu(values: np.ndarray) -> float:
    import cv2

    level, _ = cv2.threshold(values.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(level)


MIN_REGION_SHARE = 0.005  # air regions and anatomy pieces smaller than this are ignored


def _margin_kernel(gray: np.ndarray) -> np.ndarray:
    """A square of a couple of pixels' radius at the 224 px model size, proportionally more at
    larger sizes (by the longer side, so a letterboxed image gets the same either way round)."""
    m = max(1, round(max(gray.shape[:2]) / 112))
    return np.ones((2 * m + 1, 2 * m + 1), np.uint8)


def _sizeable_regions(mask: np.ndarray) -> np.ndarray:
    """bool: the 8-connected regions of `mask` covering at least MIN_REGION_SHARE of it."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    areas = stats[1:count, cv2.CC_STAT_AREA]
    return np.isin(labels, 1 + np.flatnonzero(areas >= MIN_REGION_SHARE * mask.size))


def exposure_field(gray: np.ndarray) -> np.ndarray:
    """bool mask of the usable exposed field: inside the collimator blades by half a patch,
    off the image border band and away from burned-in markers (`exposed_field.detect_field`),
    and inside the convex hull of the sizeable dark (air) regions, slightly eroded; without
    blades and sizeable air, the whole image less the border band and markers.

    All dark regions of at least 0.5 % of the image count, not only the largest: air usually
    lies on both sides of a limb, and the hull of one side alone would leave the limb out.
    """
    import cv2

    usable = detect_field(gray).usable
    air = _sizeable_regions((gray <= _otsu(gray)) & usable)
    if air.sum() < 0.05 * gray.size:
        return usable
    hull: np.ndarray = np.zeros(gray.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(air.astype(np.uint8))), 1)
    hull = cv2.erode(hull, _margin_kernel(gray))
    return (hull > 0) & usable if hull.sum() >= 0.2 * gray.size else usable


def foreground_mask(rgb_u8: np.ndarray, geometry: Geometry) -> np.ndarray:
    """[S, S] bool: the anatomy. Inside the exposed field (collimation border excluded) and the
    content box: pixels brighter than halfway from the air's median to Otsu's level (bone and
    soft tissue, not air), opened, without specks smaller than 0.5 % of the image (side
    markers, labels), widened by a couple of pixels so thin bones and edges stay in; the
    whole field when that finds almost nothing."""
    import cv2

    x0, y0, x1, y1 = geometry.content
    gray = np.ascontiguousarray(rgb_u8[y0:y1, x0:x1, 0])
    field = exposure_field(gray)
    level = _otsu(gray[field])
    air = gray[field & (gray <= level)]
    cut = (float(np.median(air)) + level) / 2 if air.size else level
    opened = cv2.morphologyEx(
        (field & (gray > cut)).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
    )
    pieces = _sizeable_regions(opened > 0).astype(np.uint8)
    anatomy = (cv2.dilate(pieces, _margin_kernel(gray)) > 0) & field
    if anatomy.sum() < 0.02 * field.sum():
        anatomy = field.copy()
    mask = np.zeros(rgb_u8.shape[:2], bool)
    mask[y0:y1, x0:x1] = anatomy
    return mask


@dataclass
class ErrorMap:
    """An error map in model space with what is needed to place it on the source image."""

    model_map: np.ndarray
    counts: np.ndarray
    foreground: np.ndarray
    geometry: Geometry
    mode: str
    passes: int

    def full_resolution(self) -> np.ndarray:
        return to_source(self.model_map, self.geometry)


def noise_for(
    mode: str, grid: int, mask_ratio: float, passes: int | None = None, seed: int = 0
) -> np.ndarray:
    """The [K, L] noise of an error-map mode."""
    if mode == "complementary":
        return complementary_noise(grid, passes or 4, mask_ratio)
    if mode == "reference":
        return reference_noise(grid * grid, passes or 10, seed)
    raise ValueError(f"unknown error-map mode {mode!r}; expected one of {MODES}")


def pack_anatomy(foreground: np.ndarray, geometry: Geometry) -> dict[str, Any]:
    """The model-space anatomy mask and where the image lies in it, JSON-ready (bit-packed,
    base64): a display draws the map only where hotspots and scores come from."""
    import base64

    bits = np.packbits(np.asarray(foreground, bool).ravel())
    return {
        "shape": [int(v) for v in foreground.shape],
        "content": [int(v) for v in geometry.content],
        "bits": base64.b64encode(bits.tobytes()).decode("ascii"),
    }


def anatomy_at(packed: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    """bool [rows, cols]: a `pack_anatomy` mask on an image grid of `shape` (the full-resolution
    image or a uniformly reduced copy of it), nearest neighbour."""
    import base64

    import cv2

    rows, cols = (int(v) for v in packed["shape"])
    raw = np.frombuffer(base64.b64decode(packed["bits"]), np.uint8)
    mask = np.unpackbits(raw)[: rows * cols].reshape(rows, cols)
    x0, y0, x1, y1 = (int(v) for v in packed["content"])
    content = np.ascontiguousarray(mask[y0:y1, x0:x1])
    resized = cv2.resize(content, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool)
