"""X-ray physics: Beer-Lambert projection, scatter, quantum noise, detector and log transform."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .render import PathMaps

# linear attenuation (1/mm) at an effective energy of ~45 keV. Bone coefficients are differential
# (on top of the soft tissue whose envelope already contains the bone volume).
MU_SOFT = 0.024
MU_CORTICAL = 0.075
MU_TRABECULAR = 0.030
MU_MARROW = -0.002
MU_METAL = 1.2
MU_LEAD = 3.0


@dataclass(frozen=True)
class Exposure:
    """Acquisition parameters of one radiograph."""

    photons: float  # unattenuated quanta per pixel
    scatter: float  # scatter-to-primary scale
    field: tuple[float, float, float, float]  # collimated field x0, y0, x1, y1 (px)
    field_angle: float  # rotation of the collimator (deg)
    heel: float  # relative intensity gradient across the field (anode heel effect)
    bits: int  # BitsStored
    unsharp: float  # strength of the detector's edge-enhancement processing
    blur: float  # detector blur sigma (px)


def trabecular_texture(rng: np.random.Generator, size: int, spacing_mm: float) -> np.ndarray:
    """Band-passed, ridged noise with sub-millimetre structures: a multiplicative trabecular map.

    Mean 1; thin bright ridges (trabeculae) around darker marrow spaces.
    """
    cell = max(1.0, 0.45 / spacing_mm)  # pixels per noise cell
    out = np.zeros((size, size), np.float32)
    for scale, weight in ((1.0, 0.6), (2.0, 0.4)):
        m = max(8, int(size / (cell * scale)))
        noise: np.ndarray = rng.standard_normal((m, m)).astype(np.float32)
        noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
        out += weight * np.exp(-2.0 * noise * noise)  # ridges where the noise crosses zero
    out /= float(out.mean() + 1e-6)
    return np.clip(1.0 + 0.4 * (out - 1.0), 0.4, 1.6)


def line_integral(maps: PathMaps, tex: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Sum of mu * path over materials (dimensionless), per pixel."""
    total = MU_SOFT * smooth(maps.soft, 2.0 / spacing_mm)
    total += MU_CORTICAL * (maps.cortical + maps.dense)
    total += MU_TRABECULAR * maps.trabecular * tex
    total += MU_MARROW * maps.marrow
    total += MU_METAL * maps.metal
    return total * spacing_mm


def field_mask(size: int, exp: Exposure) -> np.ndarray:
    """1 inside the collimated field, ~0 outside, with a few pixels of penumbra.

    Computed on a quarter-resolution grid and upsampled: the edge is smooth anyway.
    """
    x0, y0, x1, y1 = exp.field
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a = np.radians(exp.field_angle)
    step = 4 if size >= 256 else 1
    n = size // step
    coords = (np.arange(n, dtype=np.float32) + 0.5) * step
    xs = coords[None, :] - cx
    ys = coords[:, None] - cy
    u = xs * np.cos(a) + ys * np.sin(a)
    v = -xs * np.sin(a) + ys * np.cos(a)
    pen = max(1.5, size / 400)
    inside = np.clip(((x1 - x0) / 2 - np.abs(u)) / pen + 0.5, 0, 1)
    inside *= np.clip(((y1 - y0) / 2 - np.abs(v)) / pen + 0.5, 0, 1)
    inside = inside.astype(np.float32)
    if step > 1:
        inside = cv2.resize(inside, (size, size), interpolation=cv2.INTER_LINEAR)
    return inside


def smooth(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur; large kernels run on a downsampled copy for speed."""
    if sigma_px < 6:
        return cv2.GaussianBlur(img, (0, 0), sigma_px)
    return _smooth_large(img, sigma_px)


def _smooth_large(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with a large sigma, done on a downsampled copy for speed."""
    size = img.shape[0]
    factor = max(1, int(sigma_px / 4))
    small = cv2.resize(img, (max(size // factor, 4),) * 2, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / factor)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def expose(
    mu_l: np.ndarray,
    exp: Exposure,
    rng: np.random.Generator,
    spacing_mm: float,
    quantum_noise: bool = True,
) -> np.ndarray:
    """Detected quanta per pixel: primary + scatter, with heel effect and Poisson noise
    (without it the expected quanta; the noise is drawn either way, so every later random
    choice stays the same)."""
    size = mu_l.shape[0]
    field = field_mask(size, exp)
    ramp = np.linspace(1.0 - exp.heel, 1.0 + exp.heel, size, dtype=np.float32)[:, None]
    incident = exp.photons * ramp * (0.004 + 0.996 * field)
    primary = incident * np.exp(-mu_l)
    if exp.blur > 0:
        primary = cv2.GaussianBlur(primary, (0, 0), exp.blur)
    # scatter originates where the beam was attenuated and spreads over centimetres
    source = incident * (1.0 - np.exp(-np.minimum(mu_l, 3.0))) * np.exp(-0.5 * mu_l)
    scatter = exp.scatter * _smooth_large(source, 25.0 / spacing_mm)
    mean = primary + scatter
    noise = rng.standard_normal(mean.shape, dtype=np.float32)
    if not quantum_noise:
        return np.maximum(mean, 0.5)
    return np.maximum(mean + np.sqrt(np.maximum(mean, 1.0)) * noise, 0.5)


def to_stored(
    quanta: np.ndarray, exp: Exposure, spacing_mm: float, body: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Log transform + edge enhancement to stored values (MONOCHROME2: bone bright).

    Returns the uint16 pixels and a window (centre, width) covering the body.
    """
    density = np.log(exp.photons) - np.log(quanta)  # ~ line integral, 0 for direct exposure
    if exp.unsharp > 0:
        base = _smooth_large(density, 6.0 / spacing_mm)
        density = density + exp.unsharp * (density - base)
    top = float(2**exp.bits - 1)
    lo, hi = -0.3, 6.5
    scaled = (density - lo) / (hi - lo) * top
    stored = np.clip(np.rint(scaled), 0, top).astype(np.uint16)
    inside = stored[body] if body.any() else stored.ravel()
    sample = inside[:: max(1, inside.size // 20000)]
    p_lo, p_hi = np.percentile(sample, [0.5, 99.5])
    width = max(float(p_hi - p_lo) * 1.15, 16.0)
    center = float(p_lo + p_hi) / 2.0
    return stored, center, width


def draw_marker(
    metal: np.ndarray, letter: str, exp: Exposure, soft: np.ndarray, spacing_mm: float
) -> tuple[int, int, int, int]:
    """Draw a lead L/R marker into the metal map in the emptiest corner of the field."""
    x0, y0, x1, y1 = (int(v) for v in exp.field)
    scale = max(0.4, 9.0 / spacing_mm / 22.0)
    thick = max(1, int(round(scale * 2.2)))
    (tw, th), _ = cv2.getTextSize(letter, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    m = int(tw * 0.6) + 4
    corners = [
        (x0 + m, y0 + m + th),
        (x1 - m - tw, y0 + m + th),
        (x0 + m, y1 - m),
        (x1 - m - tw, y1 - m),
    ]

    def load(c: tuple[int, int]) -> float:
        cx, cy = c
        return float(soft[max(cy - th, 0) : cy + 1, max(cx, 0) : cx + tw + 1].sum())

    best = min(corners, key=load)
    canvas = np.zeros(metal.shape, np.uint8)
    cv2.putText(canvas, letter, best, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    lead_px = 1.5 / spacing_mm * (MU_LEAD / MU_METAL)
    metal += canvas.astype(np.float32) * (lead_px / 255.0)
    return best[0], best[1] - th, best[0] + tw, best[1]
