"""3D solid primitives (tapered capsules, ellipsoids) and their analytic projection along z.

A primitive lives either in scene space (millimetres) or, after `Pose.apply`, in image space
(pixels, z still the beam direction). `chords` returns the path length of the beam through the
solid and through its inner (medullary) core for every pixel of a window, which is all the
renderer needs: cortical path = outer - inner.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

MIN_SIN_TILT = 0.35  # caps the depth stretch of a capsule seen nearly end-on


def rotation(ax: float = 0.0, ay: float = 0.0, az: float = 0.0) -> np.ndarray:
    """Rotation matrix for angles in degrees about x, then y, then z."""
    a, b, c = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Pose:
    """Rigid motion plus isotropic scale (and optional mirror): x' = scale * R @ x + t."""

    rot: np.ndarray = field(default_factory=lambda: np.eye(3))
    scale: float = 1.0
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def point(self, p: np.ndarray) -> np.ndarray:
        return self.scale * (self.rot @ np.asarray(p, float)) + self.t

    def then(self, other: Pose) -> Pose:
        """The pose that applies `self` first and `other` second."""
        return Pose(other.rot @ self.rot, other.scale * self.scale, other.point(self.t))

    @staticmethod
    def about(center: np.ndarray, rot: np.ndarray) -> Pose:
        """Rotation `rot` about the point `center`."""
        c = np.asarray(center, float)
        return Pose(rot, 1.0, c - rot @ c)


@dataclass(frozen=True)
class Capsule:
    """A tapered capsule from p0 (radius r0) to p1 (radius r1); `inner` is the core radius ratio."""

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float
    inner: float = 0.0
    tag: str = ""
    caps: bool = True  # False: a truncated cone with flat ends instead of rounded ones

    def moved(self, pose: Pose) -> Capsule:
        return replace(
            self,
            p0=pose.point(self.p0),
            p1=pose.point(self.p1),
            r0=self.r0 * pose.scale,
            r1=self.r1 * pose.scale,
        )

    def bbox(self) -> tuple[float, float, float, float]:
        r = max(self.r0, self.r1)
        xs = (self.p0[0], self.p1[0])
        ys = (self.p0[1], self.p1[1])
        return min(xs) - r, min(ys) - r, max(xs) + r, max(ys) + r

    def chords(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outer and inner path lengths at image points (x, y) (broadcastable arrays)."""
        x0, y0 = float(self.p0[0]), float(self.p0[1])
        ax, ay = float(self.p1[0] - x0), float(self.p1[1] - y0)
        len2 = ax * ax + ay * ay
        len3 = float(np.linalg.norm(self.p1 - self.p0))
        u = x - x0
        v = y - y0
        if len2 < 1e-9:
            t = np.zeros(np.broadcast_shapes(np.shape(u), np.shape(v)), np.float32)
            stretch = 1.0
        else:
            raw = (u * ax + v * ay) / len2
            t = np.clip(raw, 0.0, 1.0)
            stretch = 1.0 / max(np.sqrt(len2) / max(len3, 1e-9), MIN_SIN_TILT)
        dx = u - t * ax
        dy = v - t * ay
        d2 = dx * dx + dy * dy
        if not self.caps and len2 >= 1e-9:
            d2 = np.where((raw < 0.0) | (raw > 1.0), np.float32(1e12), d2)
        r = self.r0 + t * (self.r1 - self.r0)
        r2 = r * r
        outer = (2.0 * stretch) * np.sqrt(np.maximum(r2 - d2, 0.0))
        if self.inner <= 0:
            return outer, np.zeros_like(outer)
        inner = (2.0 * stretch) * np.sqrt(np.maximum(r2 * (self.inner * self.inner) - d2, 0.0))
        return outer, inner


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid with principal axes given by the columns of `rot` and semi-axes `axes`."""

    center: np.ndarray
    axes: tuple[float, float, float]
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))
    inner: float = 0.0
    tag: str = ""

    def moved(self, pose: Pose) -> Ellipsoid:
        s = pose.scale
        return replace(
            self,
            center=pose.point(self.center),
            axes=(self.axes[0] * s, self.axes[1] * s, self.axes[2] * s),
            rot=pose.rot @ self.rot,
        )

    def _quadric(self) -> np.ndarray:
        inv = np.diag([1.0 / (a * a) for a in self.axes])
        return self.rot @ inv @ self.rot.T

    def bbox(self) -> tuple[float, float, float, float]:
        cov = self.rot @ np.diag([a * a for a in self.axes]) @ self.rot.T
        ex, ey = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
        cx, cy = float(self.center[0]), float(self.center[1])
        return cx - ex, cy - ey, cx + ex, cy + ey

    def chords(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outer and inner path lengths at image points (x, y) (broadcastable arrays)."""
        a = self._quadric()
        u = x - float(self.center[0])
        v = y - float(self.center[1])
        a33 = float(a[2, 2])
        b = float(a[0, 2]) * u + float(a[1, 2]) * v
        q = float(a[0, 0]) * u * u + float(2 * a[0, 1]) * u * v + float(a[1, 1]) * v * v
        b2 = b * b
        outer = (2.0 / a33) * np.sqrt(np.maximum(b2 - a33 * (q - 1.0), 0.0))
        if self.inner <= 0:
            return outer, np.zeros_like(outer)
        k2 = self.inner * self.inner
        inner = (2.0 / a33) * np.sqrt(np.maximum(b2 - a33 * (q - k2), 0.0))
        return outer, inner


Primitive = Capsule | Ellipsoid


def ellipsoid_along(
    p0: np.ndarray, p1: np.ndarray, width: float, depth: float, inner: float = 0.0, tag: str = ""
) -> Ellipsoid:
    """An ellipsoid spanning the segment p0-p1 with the given full width (x) and depth (z)."""
    p0 = np.asarray(p0, float)
    p1 = np.asarray(p1, float)
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    e1 = axis / max(length, 1e-9)
    ref = np.array([0.0, 0.0, 1.0]) if abs(e1[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e0 = np.cross(e1, ref)
    e0 /= np.linalg.norm(e0)
    e2 = np.cross(e0, e1)
    rot = np.stack([e0, e1, e2], axis=1)
    return Ellipsoid((p0 + p1) / 2, (width / 2, length / 2, depth / 2), rot, inner, tag)
