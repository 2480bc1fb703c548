"""Procedural right upper limb (distal humerus, forearm, carpus, hand) in millimetres.

Scene frame: x towards the ulnar side, y from the fingertips (negative) to the elbow (positive),
z palmar. The carpus centre is the origin. The left limb is produced by mirroring later.
"""

from __future__ import annotations

import numpy as np

from .geometry import Capsule, Ellipsoid, Primitive, ellipsoid_along, rotation
from .scene import Bone, Scene, small_bone, tubular_bone

# (name, MC base x, MC base y, angle deg, MC length, shaft r, [phalanx lengths])
_FINGERS = (
    ("index", -9.0, -19.0, -7.0, 66.0, 4.0, (40.0, 24.0, 17.0)),
    ("middle", 1.0, -21.0, 0.0, 63.0, 4.0, (44.0, 28.0, 18.0)),
    ("ring", 10.5, -19.5, 6.0, 57.0, 3.6, (41.0, 26.0, 18.0)),
    ("little", 19.0, -16.0, 13.0, 52.0, 3.4, (33.0, 19.0, 16.0)),
)
_CARPALS = (  # name, centre, semi-axes, in-plane rotation (deg)
    ("scaphoid", (-13.0, 6.0, 1.0), (5.8, 11.0, 6.5), 40.0),
    ("lunate", (-0.5, 9.5, 0.0), (6.8, 6.8, 8.0), 0.0),
    ("triquetrum", (10.5, 5.5, -1.0), (6.0, 6.2, 6.5), -20.0),
    ("pisiform", (13.0, 8.0, 9.0), (4.5, 5.0, 4.5), 0.0),
    ("trapezium", (-19.0, -7.5, 3.0), (6.8, 6.5, 7.0), 30.0),
    ("trapezoid", (-9.0, -8.5, 0.0), (5.0, 6.5, 6.0), 0.0),
    ("capitate", (1.2, -5.0, 0.0), (6.3, 11.0, 8.0), 0.0),
    ("hamate", (11.5, -5.0, 0.0), (6.8, 10.0, 8.0), -10.0),
)


def _direction(angle: float, flex: float) -> np.ndarray:
    a, f = np.radians(angle), np.radians(flex)
    return np.array([np.sin(a) * np.cos(f), -np.cos(a) * np.cos(f), np.sin(f)])


def _digit(
    name: str,
    start: np.ndarray,
    angle: float,
    lengths: tuple[float, ...],
    radii: tuple[float, ...],
    flex: list[float],
    gap: float,
    sites: tuple[str, ...],
) -> tuple[list[Bone], list[Primitive]]:
    """A ray of tubular bones joined by cartilage gaps; returns bones and the finger soft tissue."""
    bones: list[Bone] = []
    p = np.asarray(start, float)
    phi = 0.0
    labels = ("mc", "pp", "mp", "dp") if len(lengths) == 4 else ("mc", "pp", "dp")
    for i, (length, r) in enumerate(zip(lengths, radii, strict=True)):
        phi += flex[i]
        d = _direction(angle, phi)
        head = p + d * length
        last = i == len(lengths) - 1
        site = sites[0] if i == 0 else sites[1]
        bone = tubular_bone(
            f"{name}_{labels[i]}",
            p,
            head,
            r,
            base_w=r * 3.3,
            head_w=r * (1.9 if last else 2.9),
            sites=(site,),
            cortex=0.5,
            head_round=i == 0,
        )
        bones.append(bone)
        p = head + d * gap
    tip = p
    soft: list[Primitive] = []
    first_head = bones[0].axis[1]
    soft.append(Capsule(first_head, tip, radii[1] * 2.6 + 2.0, radii[-1] * 2.6 + 1.5))
    return bones, soft


def upper_limb(rng: np.random.Generator, flexion: float, soft_scale: float) -> Scene:
    """Build the limb; `flexion` (deg) bends the finger joints, `soft_scale` thickens tissue."""
    bones: list[Bone] = []
    soft: list[Primitive] = []
    gap = float(rng.uniform(1.4, 2.0))
    spread = float(rng.uniform(-3.0, 6.0))
    for k, (name, bx, by, ang, mc_len, r, phal) in enumerate(_FINGERS):
        jitter = rng.normal(0.0, 0.04, 4)
        lengths = tuple(float(v * (1 + j)) for v, j in zip((mc_len, *phal), jitter, strict=True))
        radii = (r, r * 0.88, r * 0.72, r * 0.58)
        flex = [0.0] + [flexion * float(rng.uniform(0.6, 1.2)) for _ in range(3)]
        b, s = _digit(
            name,
            np.array([bx, by, 0.0]),
            ang + spread * (k - 1.5) / 1.5,
            lengths,
            radii,
            flex,
            gap,
            ("metacarpals", "hand phalanges"),
        )
        bones += b
        soft += s
    # thumb: from the trapezium, pointing radially and palmarly
    t_flex = [25.0, flexion * 0.5, flexion * 0.6]
    tb, ts = _digit(
        "thumb",
        np.array([-22.0, -13.0, 4.0]),
        -38.0 + float(rng.normal(0, 3)),
        (44.0, 31.0, 24.0),
        (4.4, 4.0, 3.4),
        t_flex,
        gap,
        ("metacarpals", "hand phalanges"),
    )
    bones += tb
    soft += ts
    mc1_head = tb[0].axis[1]
    for side in (-1.0, 1.0):  # sesamoids at the thumb MCP joint
        c = mc1_head + np.array([side * 3.0, -1.0, 5.0])
        bones.append(small_bone(f"sesamoid{side:+.0f}", c, (2.3, 2.6, 2.3), site="hand phalanges"))
    for name, c, (a0, a1, a2), rz in _CARPALS:
        axes = (a0 * 1.08, a1 * 1.08, a2 * 1.08)
        bones.append(small_bone(name, np.array(c), axes, rotation(az=rz), "carpal bones"))

    # distal radius and ulna run to the elbow; the radius head sits at y ~ 265
    radius = tubular_bone(
        "radius",
        np.array([-14.0, 262.0, 4.0]),
        np.array([-9.0, 21.0, 3.0]),
        7.0,
        base_w=21.0,
        head_w=29.0,
        sites=("proximal radius", "radial diaphysis", "distal radius"),
        end_len=0.045,
        cortex=0.5,
    )
    radius.parts.append(Ellipsoid(np.array([-22.0, 18.0, 0.0]), (4.5, 6.0, 6.0), np.eye(3), 0.8))
    radius.parts.append(Capsule(np.array([-13.5, 250.0, 0]), np.array([-13.0, 228.0, 0]), 6.5, 6.2))
    ulna = tubular_bone(
        "ulna",
        np.array([8.0, 292.0, -14.0]),
        np.array([15.0, 24.0, -5.0]),
        6.3,
        base_w=24.0,
        head_w=16.0,
        sites=("proximal ulna", "ulna diaphysis", "distal ulna"),
        end_len=0.05,
        cortex=0.5,
    )
    ulna.parts.append(Capsule(np.array([19.0, 22.0, 0]), np.array([21.0, 13.0, 0]), 2.4, 1.6, 0.5))
    bones += [radius, ulna]
    humerus = Bone(
        "humerus",
        [
            Capsule(np.array([-3.0, 520.0, 0]), np.array([-3.0, 320.0, 0]), 11.0, 12.0, 0.55),
            Capsule(np.array([-3.0, 330.0, 0]), np.array([-3.0, 300.0, -3]), 13.0, 27.0, 0.85),
            ellipsoid_along(
                np.array([-32.0, 296.0, -3]), np.array([28.0, 296.0, -3]), 22, 26, 0.86
            ),
            Ellipsoid(np.array([-15.0, 279.0, 3.0]), (10.0, 9.0, 10.0), np.eye(3), 0.86),
            Ellipsoid(np.array([5.0, 281.0, 0.0]), (12.0, 9.0, 13.0), np.eye(3), 0.86),
        ],
        (np.array([-3.0, 520.0, 0]), np.array([-3.0, 275.0, 0])),
        11.0,
        ("humeral diaphysis", "humeral diaphysis", "distal humerus"),
    )
    bones.append(humerus)

    sc = soft_scale
    soft += [
        ellipsoid_along(np.array([0.0, -8.0, 2]), np.array([2.0, -92.0, 2]), 88 * sc, 30 * sc),
        ellipsoid_along(np.array([-40.0, -2.0, 4]), np.array([-8.0, -60.0, 4]), 40 * sc, 30 * sc),
        Capsule(np.array([1.0, -10.0, 0]), np.array([2.0, 120.0, 0]), 29 * sc, 34 * sc),
        Capsule(np.array([2.0, 120.0, 0]), np.array([0.0, 280.0, 0]), 34 * sc, 42 * sc),
        Capsule(np.array([0.0, 280.0, 0]), np.array([-3.0, 560.0, 0]), 42 * sc, 45 * sc),
    ]
    return Scene(bones, soft, np.zeros(3))
