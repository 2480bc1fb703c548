"""Procedural right lower limb (distal femur, knee, leg, ankle, foot) in millimetres.

Scene frame: x lateral, y from the thigh (negative) down to the sole, z anterior. The knee joint
line is at y = 0, the ankle joint at y ~ 383. Knee osteoarthritis is built in here because it
changes the geometry: narrowed medial joint space, osteophytes, subchondral sclerosis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Capsule, Ellipsoid, Pose, Primitive, ellipsoid_along, rotation
from .scene import Bone, Scene, small_bone, tubular_bone

V = np.array
KNEE_AXIS_CENTER = V([0.0, -12.0, -5.0])
ANKLE_AXIS_CENTER = V([0.0, 398.0, 3.0])
FOOT_CENTER = V([2.0, 425.0, 55.0])

# OA appearance per KL grade: (medial gap factor, osteophyte size mm, sclerosis mm)
_KL = {
    0: (1.0, 0.0, 0.0),
    1: (1.0, 1.2, 0.0),
    2: (0.8, 2.8, 0.0),
    3: (0.45, 4.2, 2.0),
    4: (0.12, 6.5, 3.5),
}


@dataclass(frozen=True)
class LowerLimbParams:
    """Pose and disease parameters of the lower limb."""

    knee_flexion: float = 0.0
    ankle_flexion: float = 0.0
    kl_grade: int = 0
    joint_space: float = 5.5
    drop_leg: bool = False  # foot dorsoplantar views: the leg is not in the beam
    soft_scale: float = 1.0
    include_toes: bool = True


def _trumpet(profile: tuple[tuple[float, float], ...], z: float) -> list[Primitive]:
    """A concave metaphyseal flare as a stack of cones through (y, radius) profile points."""
    return [
        Capsule(V([0.0, y0, z]), V([0.0, y1, z]), r0, r1, 0.86, caps=False)
        for (y0, r0), (y1, r1) in zip(profile[:-1], profile[1:], strict=True)
    ]


def _knee(rng: np.random.Generator, p: LowerLimbParams) -> tuple[list[Bone], list[Primitive]]:
    gap_factor, osteo, scler = _KL[p.kl_grade]
    g_med = p.joint_space * gap_factor
    g_lat = p.joint_space * (1.0 if p.kl_grade < 4 else 0.7)
    femur = Bone(
        "femur",
        [
            Capsule(V([0.0, -330.0, 0]), V([0.0, -100.0, 0]), 14.0, 15.0, 0.58),
            *_trumpet(((-115.0, 15.0), (-80.0, 18.5), (-58.0, 24.0), (-46.0, 28.0)), z=-4.0),
            Ellipsoid(V([0.0, -36.0, -5.0]), (40.0, 16.0, 29.0), np.eye(3), 0.88),
            Ellipsoid(V([-20.0, -20.0, -6.0]), (17.5, 21.0, 30.0), np.eye(3), 0.88),
            Ellipsoid(V([20.0, -20.0, -6.0]), (17.0, 20.5, 30.0), np.eye(3), 0.88),
        ],
        (V([0.0, -330.0, 0]), V([0.0, 1.0, 0])),
        14.0,
        ("femoral diaphysis", "femoral diaphysis", "distal femur"),
    )
    yp_m = 11.0 + g_med
    yp_l = 10.5 + g_lat
    tibia = Bone(
        "tibia",
        [
            Ellipsoid(V([-19.0, yp_m, -2.0]), (21.0, 10.0, 27.0), np.eye(3), 0.88),
            Ellipsoid(V([19.0, yp_l, -4.0]), (20.0, 10.0, 25.0), np.eye(3), 0.88),
            Ellipsoid(V([-4.5, yp_m - 9.5, -2.0]), (3.5, 5.0, 5.0), np.eye(3), 0.7),
            Ellipsoid(V([4.5, yp_l - 9.0, -2.0]), (3.5, 4.5, 5.0), np.eye(3), 0.7),
            Ellipsoid(V([0.0, 26.0, -2.0]), (37.0, 13.0, 27.0), np.eye(3), 0.88),
            *_trumpet(((34.0, 26.0), (52.0, 21.0), (75.0, 17.0), (100.0, 15.0)), z=-2.0),
            Capsule(V([0.0, 95.0, 0]), V([0.0, 225.0, 0]), 15.0, 12.5, 0.55),
            Capsule(V([0.0, 225.0, 0]), V([1.0, 340.0, 0]), 12.5, 14.0, 0.55),
            *_trumpet(((320.0, 14.0), (345.0, 17.0), (362.0, 20.0)), z=1.0),
            Ellipsoid(V([1.0, 368.0, 2.0]), (23.0, 12.0, 21.0), np.eye(3), 0.88),
            Capsule(V([-18.0, 365.0, 2]), V([-19.5, 392.0, 2]), 7.0, 5.0, 0.75),
        ],
        (V([0.0, 8.0, 0]), V([1.0, 380.0, 0])),
        13.0,
        ("proximal tibia", "tibial diaphysis", "distal tibia"),
    )
    fibula = tubular_bone(
        "fibula",
        V([34.0, 30.0, -14.0]),
        V([32.0, 405.0, -8.0]),
        6.0,
        base_w=21.0,
        head_w=17.0,
        sites=("proximal fibula", "fibular diaphysis", "distal fibula"),
        end_len=0.06,
        cortex=0.5,
    )
    patella = small_bone("patella", V([0.0, -32.0, 33.0]), (22.0, 25.0, 10.0), site="patella")
    soft: list[Primitive] = []
    if osteo > 0:
        # marginal osteophytes: spurs at the medial and lateral joint margins of femur and tibia
        for side, bone, y in (
            (-1, femur, -6.0),
            (1, femur, -6.0),
            (-1, tibia, yp_m),
            (1, tibia, yp_l),
        ):
            size = osteo * float(rng.uniform(0.7, 1.2)) * (1.0 if side < 0 else 0.7)
            x = side * (37.5 if bone is femur else 39.0) + side * size * 0.45
            dy = -1.0 if bone is tibia else 1.0
            c = V([x, y + dy * size * 0.5, -4.0])
            rot = rotation(az=side * dy * -25.0)
            bone.parts.append(
                Ellipsoid(c, (size * 0.55, size * 1.1, size * 0.9), rot, 0.5, "osteophyte")
            )
        soft.append(
            Ellipsoid(
                V([-19.0, 0.5 + g_med / 2, -2.0]),
                (15.0, max(g_med, 1.5) / 2 + 1.5, 20.0),
                tag="joint",
            )
        )
    if scler > 0:
        tibia.extras.append(Ellipsoid(V([-20.0, yp_m - 6.0, -2.0]), (15.0, scler, 20.0)))
        femur.extras.append(Ellipsoid(V([-20.0, -1.5, -6.0]), (13.0, scler * 0.8, 18.0)))
    return [femur, patella, tibia, fibula], soft


def _foot(rng: np.random.Generator, p: LowerLimbParams) -> list[Bone]:
    bones: list[Bone] = []
    talus = small_bone("talus", V([0.0, 399.0, 4.0]), (15.5, 15.0, 24.0), site="tarsal bones")
    talus.parts.append(Ellipsoid(V([-5.0, 406.0, 28.0]), (11.0, 9.5, 13.0), np.eye(3), 0.84))
    calc = small_bone(
        "calcaneus",
        V([4.0, 426.0, -12.0]),
        (16.0, 17.0, 34.0),
        rotation(ax=-8.0),
        site="tarsal bones",
    )
    calc.parts.append(Ellipsoid(V([5.0, 432.0, -40.0]), (15.0, 20.0, 16.0), np.eye(3), 0.84))
    calc.parts.append(Ellipsoid(V([1.0, 415.0, 4.0]), (13.0, 9.0, 12.0), np.eye(3), 0.84))
    bones += [talus, calc]
    tarsals = (
        ("navicular", V([-8.0, 411.0, 45.0]), (14.0, 9.0, 7.5), rotation()),
        ("cuboid", V([16.0, 427.0, 50.0]), (11.0, 11.0, 13.0), rotation()),
        ("cuneiform_m", V([-15.0, 418.0, 62.0]), (7.0, 12.0, 10.0), rotation()),
        ("cuneiform_i", V([-4.0, 415.0, 59.0]), (5.5, 9.0, 8.0), rotation()),
        ("cuneiform_l", V([6.0, 418.0, 60.0]), (6.0, 9.5, 8.5), rotation()),
    )
    for name, c, axes, rot in tarsals:
        bones.append(small_bone(name, c, axes, rot, "tarsal bones"))
    # metatarsals: (x base, z base, x head, z head, shaft r, base w, head w)
    rays = (
        (-16.0, 72.0, -19.0, 133.0, 5.6, 20.0, 19.0),
        (-5.0, 70.0, -5.0, 142.0, 3.6, 13.0, 12.0),
        (5.0, 71.0, 8.0, 138.0, 3.4, 12.0, 11.0),
        (14.0, 68.0, 20.0, 131.0, 3.4, 12.0, 11.0),
        (24.0, 62.0, 31.0, 122.0, 3.6, 15.0, 11.0),
    )
    gap = float(rng.uniform(1.5, 2.2))
    for k, (xb, zb, xh, zh, r, bw, hw) in enumerate(rays):
        if not p.include_toes:
            break  # AP ankle: the forefoot is outside the collimated field
        base = V([xb, 421.0, zb])
        head = V([xh, 440.0, zh])
        bones.append(
            tubular_bone(
                f"mt{k + 1}", base, head, r, bw, hw, ("metatarsals",), cortex=0.5, head_round=True
            )
        )
        d = (head - base) / np.linalg.norm(head - base)
        d = np.array([d[0], 0.05, d[2]])
        d /= np.linalg.norm(d)
        lengths = (30.0, 24.0) if k == 0 else (21.0, 10.0, 8.0)
        pr = head + d * gap
        for j, length in enumerate(lengths):
            rr = r * (0.85 if k == 0 else 0.75) * (0.8**j)
            end = pr + d * length
            last = j == len(lengths) - 1
            bones.append(
                tubular_bone(
                    f"toe{k + 1}_{j}",
                    pr,
                    end,
                    rr,
                    rr * 3.2,
                    rr * (2.0 if last else 2.8),
                    ("foot phalanges",),
                    cortex=0.5,
                )
            )
            pr = end + d * gap
    return bones


def lower_limb(rng: np.random.Generator, p: LowerLimbParams) -> Scene:
    """Build the limb with the knee flexed and the ankle dorsi/plantar-flexed as requested."""
    knee_bones, joints = _knee(rng, p)
    foot_bones = _foot(rng, p)
    ankle = Pose.about(ANKLE_AXIS_CENTER, rotation(ax=p.ankle_flexion))
    foot_bones = [b.moved(ankle) for b in foot_bones]
    s = p.soft_scale
    soft: list[Primitive] = [
        Capsule(V([0.0, -360.0, -5]), V([0.0, -60.0, -5]), 68 * s, 58 * s),
        Ellipsoid(V([0.0, -10.0, 0.0]), (58 * s, 85.0, 55 * s), np.eye(3)),
        Capsule(V([2.0, 40.0, -8]), V([4.0, 200.0, -14]), 50 * s, 48 * s),
        Capsule(V([4.0, 200.0, -14]), V([3.0, 380.0, -2]), 48 * s, 30 * s),
    ]
    foot_soft: list[Primitive] = [
        Ellipsoid(V([3.0, 418.0, -18.0]), (31 * s, 34.0, 44.0), np.eye(3)),
        ellipsoid_along(V([1.0, 430.0, -40]), V([4.0, 432.0, 112]), 68 * s, 42 * s),
        ellipsoid_along(V([-4.0, 438.0, 60]), V([-6.0, 444.0, 170]), 78 * s, 24 * s),
    ]
    soft += [q.moved(ankle) for q in foot_soft]
    bones = knee_bones + foot_bones
    below_knee = {"tibia", "fibula"} | {b.name for b in foot_bones}
    if p.knee_flexion:
        knee = Pose.about(KNEE_AXIS_CENTER, rotation(ax=-p.knee_flexion))
        half = Pose.about(KNEE_AXIS_CENTER, rotation(ax=-p.knee_flexion * 0.5))
        bones = [
            b.moved(knee) if b.name in below_knee else b.moved(half) if b.name == "patella" else b
            for b in bones
        ]
        soft = [q.moved(knee) if k >= 2 else q for k, q in enumerate(soft)]
    if p.drop_leg:
        bones = [b for b in bones if b.name not in ("femur", "patella", "tibia", "fibula")]
        soft = soft[4:]
    return Scene(bones, soft, V([0.0, 0.0, 0.0]), joints)
