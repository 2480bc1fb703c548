"""Body parts, views and the projection pose that maps a limb scene into image pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy_lower import FOOT_CENTER, LowerLimbParams, lower_limb
from .anatomy_upper import upper_limb
from .geometry import Pose, rotation
from .scene import Scene


@dataclass(frozen=True)
class BodyPart:
    """A radiographic body part: which limb, which views, where to centre and how wide."""

    name: str  # DICOM BodyPartExamined
    limb: str  # "upper" or "lower"
    views: tuple[str, ...]
    center: tuple[float, float, float]
    fov_mm: tuple[float, float]


BODY_PARTS: dict[str, BodyPart] = {
    "hand": BodyPart("HAND", "upper", ("PA", "LAT"), (0.0, -66.0, 0.0), (250.0, 285.0)),
    "wrist": BodyPart("WRIST", "upper", ("PA", "LAT"), (-2.0, 4.0, 0.0), (120.0, 150.0)),
    "forearm": BodyPart("FOREARM", "upper", ("AP", "LAT"), (0.0, 150.0, 0.0), (340.0, 390.0)),
    "knee": BodyPart("KNEE", "lower", ("AP", "LAT"), (0.0, -8.0, 0.0), (210.0, 260.0)),
    "ankle": BodyPart("ANKLE", "lower", ("AP", "LAT"), (0.0, 372.0, 0.0), (190.0, 240.0)),
    "foot": BodyPart("FOOT", "lower", ("AP", "LAT"), tuple(FOOT_CENTER), (240.0, 285.0)),
}
REGIONS = tuple(BODY_PARTS)


@dataclass(frozen=True)
class ViewGeometry:
    """The posed scene in image pixels and the sampling that produced it."""

    scene: Scene
    spacing_mm: float  # pixel size at the patient
    px_per_mm: float


def build_view(
    region: str,
    view: str,
    laterality: str,
    size: int,
    rng: np.random.Generator,
    kl_grade: int = 0,
) -> ViewGeometry:
    """Build the limb for `region`, pose it for `view` and map it into a size x size image."""
    part = BODY_PARTS[region]
    lateral = view == "LAT"
    if part.limb == "upper":
        flex = float(rng.uniform(12.0, 35.0) if lateral else rng.uniform(0.0, 10.0))
        scene = upper_limb(rng, flex, float(rng.uniform(0.88, 1.15)))
    else:
        knee_flex = 0.0
        if region == "knee":
            knee_flex = float(rng.uniform(8.0, 35.0) if lateral else rng.uniform(0.0, 4.0))
        params = LowerLimbParams(
            knee_flexion=knee_flex,
            ankle_flexion=float(rng.uniform(-12.0, 8.0)),
            kl_grade=kl_grade,
            joint_space=float(rng.uniform(4.6, 6.2)),
            drop_leg=region == "foot" and not lateral,
            soft_scale=float(rng.uniform(0.88, 1.15)),
            include_toes=not (region == "ankle" and not lateral),
        )
        scene = lower_limb(rng, params)
    center = np.array(part.center, float)
    if region == "foot" and not lateral:
        view_rot = rotation(ax=float(rng.uniform(72.0, 84.0)), ay=float(rng.normal(0, 4)))
    elif lateral:
        view_rot = rotation(ay=90.0 + float(rng.normal(0, 4)))
    else:
        view_rot = rotation(ay=float(rng.normal(0, 4)))
    mirror = np.diag([-1.0, 1.0, 1.0]) if laterality == "L" else np.eye(3)
    in_plane = rotation(az=float(rng.normal(0, 6)))
    fov = float(rng.uniform(*part.fov_mm))
    px = size / fov
    rot = in_plane @ view_rot @ mirror
    jitter = rng.normal(0, 0.03, 2) * size
    target = np.array([size / 2 + jitter[0], size / 2 + jitter[1], 0.0])
    pose = Pose(rot, px, target - px * (rot @ center))
    return ViewGeometry(scene.moved(pose), 1.0 / px, px)
