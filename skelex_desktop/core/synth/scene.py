"""Scene model: bones made of primitives, soft tissue, and helpers to build tubular bones."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .geometry import Capsule, Ellipsoid, Pose, Primitive, ellipsoid_along


@dataclass
class Bone:
    """One bone: a union of primitives with a cortical shell and a medullary core.

    `axis` (proximal, distal) and `radius` describe the shaft for placing findings; `sites`
    names its (proximal, shaft, distal) anatomical locations (a 1-tuple for small bones).
    `extras` are dense primitives added on top of the union (subchondral sclerosis).
    """

    name: str
    parts: list[Primitive]
    axis: tuple[np.ndarray, np.ndarray]
    radius: float
    sites: tuple[str, ...]
    tubular: bool = True
    extras: list[Primitive] = field(default_factory=list)

    def moved(self, pose: Pose) -> Bone:
        return replace(
            self,
            parts=[p.moved(pose) for p in self.parts],
            extras=[p.moved(pose) for p in self.extras],
            axis=(pose.point(self.axis[0]), pose.point(self.axis[1])),
            radius=self.radius * pose.scale,
        )

    def site_at(self, t: float) -> str:
        """Anatomical location at axis parameter t (0 proximal, 1 distal)."""
        if len(self.sites) == 1:
            return self.sites[0]
        if t < 0.28:
            return self.sites[0]
        if t > 0.72:
            return self.sites[2]
        return self.sites[1]

    def bbox(self) -> tuple[float, float, float, float]:
        boxes = np.array([p.bbox() for p in self.parts + self.extras])
        return (
            float(boxes[:, 0].min()),
            float(boxes[:, 1].min()),
            float(boxes[:, 2].max()),
            float(boxes[:, 3].max()),
        )


@dataclass
class Scene:
    """All solids of one radiograph, in scene (mm) or image (px) space."""

    bones: list[Bone]
    soft: list[Primitive]
    center: np.ndarray  # the point the field of view is centred on
    joints: list[Primitive] = field(default_factory=list)  # joint-space regions (OA masks)

    def moved(self, pose: Pose) -> Scene:
        return Scene(
            [b.moved(pose) for b in self.bones],
            [p.moved(pose) for p in self.soft],
            pose.point(self.center),
            [p.moved(pose) for p in self.joints],
        )

    def bone(self, name: str) -> Bone:
        return next(b for b in self.bones if b.name == name)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def tubular_bone(
    name: str,
    base: np.ndarray,
    head: np.ndarray,
    shaft_r: float,
    base_w: float,
    head_w: float,
    sites: tuple[str, ...],
    depth_ratio: float = 0.85,
    end_len: float = 0.17,
    cortex: float = 0.55,
    head_round: bool = False,
) -> Bone:
    """A long or short tubular bone: waisted shaft plus ellipsoidal base and head.

    `base` is the proximal articular end, `head` the distal one; widths are full widths in mm.
    `cortex` is the medullary radius ratio of the shaft (smaller = thicker cortex).
    """
    base = np.asarray(base, float)
    head = np.asarray(head, float)
    axis = head - base
    length = float(np.linalg.norm(axis))
    e = _unit(axis)
    lb = length * end_len
    lh = length * end_len * (1.25 if head_round else 1.0)
    parts: list[Primitive] = [
        Capsule(base + e * lb * 0.8, (base + head) / 2, shaft_r * 1.08, shaft_r * 0.97, cortex),
        Capsule((base + head) / 2, head - e * lh * 0.8, shaft_r * 0.97, shaft_r * 1.05, cortex),
        # metaphyseal flares: cones from the shaft to the articular ends
        Capsule(
            base + e * lb * 0.6, base + e * lb * 3.0, base_w * 0.46, shaft_r * 1.02, 0.8, caps=False
        ),
        Capsule(
            head - e * lh * 0.6, head - e * lh * 3.0, head_w * 0.46, shaft_r * 1.02, 0.8, caps=False
        ),
        ellipsoid_along(base, base + e * lb * 1.5, base_w, base_w * depth_ratio, 0.86),
        ellipsoid_along(head - e * lh * 1.5, head, head_w, head_w * depth_ratio, 0.86),
    ]
    return Bone(name, parts, (base, head), shaft_r, sites)


def small_bone(
    name: str,
    center: np.ndarray,
    axes: tuple[float, float, float],
    rot: np.ndarray | None = None,
    site: str = "carpal bones",
) -> Bone:
    """A compact (carpal, tarsal, sesamoid) bone: one ellipsoid with a thin cortex."""
    rot = np.eye(3) if rot is None else rot
    center = np.asarray(center, float)
    ell = Ellipsoid(center, axes, rot, 0.84)
    long = int(np.argmax(axes))
    d = rot[:, long] * axes[long] * 0.8
    return Bone(name, [ell], (center - d, center + d), float(sorted(axes)[1]), (site,), False)
