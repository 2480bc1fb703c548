"""Finding specifications in image space (fracture, lesions, implant) and their local effects.

Each spec knows how to modify the path-length arrays of its host bone inside a window, and how
to draw its own pixel mask. Coordinates are image pixels; `xs` is a row, `ys` a column vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _soft_step(x: np.ndarray) -> np.ndarray:
    """0 for x <= -0.5, 1 for x >= 0.5, linear in between (one-pixel anti-aliased edge)."""
    return np.clip(x + 0.5, 0.0, 1.0)


@dataclass(frozen=True)
class Fracture:
    """A fracture line through `bone` at `center`; `normal` points towards the distal fragment."""

    bone: str
    center: tuple[float, float]
    normal: tuple[float, float]
    width: float  # gap in px
    depth: float  # 1 = complete gap, < 1 = partial (subtle) lucency
    waves: tuple[tuple[float, float, float], ...]  # (amplitude px, frequency rad/px, phase)
    angle: float = 0.0  # angulation of the distal fragment (deg)
    shift: tuple[float, float] = (0.0, 0.0)  # translation of the distal fragment (px)
    half_len: float = 1e9  # the line only extends this far (px) along itself
    site: str = ""
    severity: str = "moderate"

    @property
    def displaced(self) -> bool:
        return self.angle != 0.0 or self.shift != (0.0, 0.0)

    def side(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance (px) from the jagged fracture line; positive on the distal side."""
        cx, cy = self.center
        nx, ny = self.normal
        u = x - cx
        v = y - cy
        d = u * nx + v * ny
        s = u * (-ny) + v * nx
        for amp, freq, ph in self.waves:
            d = d + amp * np.sin(freq * s + ph)
        # beyond the ends of the line the bone is intact: push those points far from it
        return d + np.sign(d + 1e-6) * np.maximum(np.abs(s) - self.half_len, 0.0) * 50.0

    def to_source(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map image points of the displaced distal fragment back to the unbroken bone."""
        cx, cy = self.center
        a = np.radians(-self.angle)
        ca, sa = float(np.cos(a)), float(np.sin(a))
        u = x - cx - self.shift[0]
        v = y - cy - self.shift[1]
        return cx + ca * u - sa * v, cy + sa * u + ca * v

    def margin(self) -> float:
        return float(np.hypot(*self.shift)) + 4.0


@dataclass(frozen=True)
class Lesion:
    """A bone lesion. kind: aggressive | intermediate | lytic_benign | sclerotic."""

    bone: str
    kind: str
    center: tuple[float, float]
    radius: float  # px
    depth: float  # px of bone removed (or added for sclerotic) at the centre
    harmonics: tuple[tuple[float, float], ...]  # (relative amplitude, phase) for k = 2, 3, ...
    elong: float = 1.0
    angle: float = 0.0
    breach: float = 0.0  # 0..1 cortical destruction inside the lesion
    site: str = ""
    severity: str = "moderate"
    holes: tuple[tuple[float, float, float], ...] = ()  # moth-eaten lucencies (x, y, r) px

    def polar(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised radius (1 on the margin) and the margin radius in px at each point."""
        cx, cy = self.center
        a = np.radians(self.angle)
        u = xs - cx
        v = ys - cy
        ru = u * np.cos(a) + v * np.sin(a)
        rv = (-u * np.sin(a) + v * np.cos(a)) / self.elong
        theta = np.arctan2(rv, ru)
        edge = np.ones_like(theta)
        for k, (amp, ph) in enumerate(self.harmonics, start=2):
            edge = edge + amp * np.sin(k * theta + ph)
        edge = self.radius * edge
        return np.sqrt(ru * ru + rv * rv) / edge, edge

    def region(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Lesion weight 0..1 (soft edge for aggressive lesions, sharp for benign)."""
        rho, edge = self.polar(xs, ys)
        blur = 0.35 if self.kind in ("aggressive", "intermediate") else 1.2 / np.maximum(edge, 1)
        return np.clip((1.0 - rho) / blur + 0.5, 0.0, 1.0)

    def box(self) -> tuple[float, float, float, float]:
        amp = sum(a for a, _ in self.harmonics)
        r = self.radius * (1 + amp) * max(self.elong, 1.0) * 1.7 + 3
        return self.center[0] - r, self.center[1] - r, self.center[0] + r, self.center[1] + r

    def apply(
        self,
        xs: np.ndarray,
        ys: np.ndarray,
        cort: np.ndarray,
        trab: np.ndarray,
        marrow: np.ndarray,
        extra: np.ndarray,
    ) -> np.ndarray:
        """Modify the host bone's paths in place; returns the lesion's footprint weight."""
        rho, _ = self.polar(xs, ys)
        w = self.region(xs, ys)
        dome = np.sqrt(np.clip(1.0 - rho * rho, 0.0, 1.0))
        if self.kind == "sclerotic":
            extra += self.depth * np.maximum(dome, w * 0.5) * w
            return w
        hole = self.depth * np.maximum(dome, 0.35) * w
        if self.holes:
            # moth-eaten / permeative: punched-out lucencies around and inside the lesion
            moth = np.zeros(np.broadcast_shapes(xs.shape, ys.shape), np.float32)
            for hx, hy, hr in self.holes:
                d = np.sqrt((xs - hx) ** 2 + (ys - hy) ** 2)
                np.maximum(moth, np.clip(hr - d + 0.5, 0.0, 1.0), out=moth)
            hole = hole + self.depth * 0.8 * moth
            w = np.maximum(w, moth)
        take_t = np.minimum(trab, hole)
        trab -= take_t
        marrow -= np.minimum(marrow, hole - take_t)
        if self.breach > 0:
            cort *= 1.0 - self.breach * w
        else:
            cort *= 1.0 - 0.35 * w  # endosteal scalloping thins the cortex
        if self.kind == "lytic_benign":
            rim = np.clip(1.0 - np.abs(rho - 1.04) / 0.09, 0.0, 1.0)
            extra += self.depth * 0.45 * rim
        return w


@dataclass(frozen=True)
class Implant:
    """A plate with screws fixed to `bone`. `edge_on`: the plate is seen from its side."""

    bone: str
    p0: tuple[float, float]  # plate axis ends (px)
    p1: tuple[float, float]
    thickness: float  # in-plane size of the plate (px)
    path: float  # beam path through the plate (px)
    screws: tuple[tuple[float, float, float, float], ...]  # x0, y0, x1, y1
    screw_r: float
    pitch: float
    edge_on: bool
    site: str = ""
    severity: str = "obvious"

    def box(self) -> tuple[float, float, float, float]:
        pts = [self.p0, self.p1] + [(s[0], s[1]) for s in self.screws]
        pts += [(s[2], s[3]) for s in self.screws]
        arr = np.array(pts)
        m = max(self.thickness, self.screw_r * 2) + 4
        return arr[:, 0].min() - m, arr[:, 1].min() - m, arr[:, 0].max() + m, arr[:, 1].max() + m

    def metal(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Beam path through metal (px) at each point of the window."""
        out = np.zeros(np.broadcast_shapes(xs.shape, ys.shape), np.float32)
        x0, y0 = self.p0
        ax, ay = self.p1[0] - x0, self.p1[1] - y0
        length = float(np.hypot(ax, ay))
        ex, ey = ax / length, ay / length
        along = (xs - x0) * ex + (ys - y0) * ey
        perp = (xs - x0) * (-ey) + (ys - y0) * ex
        inside = _soft_step(self.thickness / 2 - np.abs(perp)) * _soft_step(
            np.minimum(along, length - along)
        )
        out += self.path * inside
        for sx0, sy0, sx1, sy1 in self.screws:
            dx, dy = sx1 - sx0, sy1 - sy0
            slen = float(np.hypot(dx, dy))
            if slen < 1e-6:  # seen end-on: a disc through the whole bone
                d2 = (xs - sx0) ** 2 + (ys - sy0) ** 2
                out += self.path * 2.2 * _soft_step(self.screw_r * 1.4 - np.sqrt(d2))
                continue
            ux, uy = dx / slen, dy / slen
            t = np.clip((xs - sx0) * ux + (ys - sy0) * uy, 0, slen)
            px = xs - sx0 - t * ux
            py = ys - sy0 - t * uy
            thread = 1.0 + 0.22 * np.sin(2 * np.pi * t / self.pitch) * (t > self.screw_r * 2)
            r = self.screw_r * thread
            out += 2.0 * np.sqrt(np.maximum(r * r - (px * px + py * py), 0.0))
            # screw head sits on the plate
            hd2 = (xs - sx0) ** 2 + (ys - sy0) ** 2
            out += 1.4 * self.screw_r * 2 * _soft_step(self.screw_r * 1.6 - np.sqrt(hd2))
        return out
