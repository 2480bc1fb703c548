"""Choose where and how a finding appears on a posed scene (image pixel space)."""

from __future__ import annotations

import numpy as np

from .lesions import Fracture, Implant, Lesion
from .scene import Bone, Scene

SEVERITIES = ("subtle", "moderate", "obvious")
_SKIP = ("sesamoid", "pisiform", "talar_head", "calc_tuber")
_BIG_LONG = ("radius", "ulna", "humerus", "femur", "tibia", "fibula")

Field = tuple[float, float, float, float]  # x0, y0, x1, y1: the exposed field, image pixels
Candidate = tuple[Bone, list[float]]  # a bone and the axis parameters t inside the field

# Implant system (cortex screw thread diameter, mm) by host bone, generator version 2 on.
# Version 1 used the 3.5 mm small-fragment system on every bone, which docs/SYNTH.md
# ("SynthMSK against the literature") shows to be too large for the hand and forefoot and too
# small for the femur: 1.5 mm in the phalanges and 2.0 mm in the metacarpals (Wheeless,
# "ORIF of hand fractures with screws"), 2.0 mm in the metatarsals (same size class,
# extrapolated), 4.5 mm in the distal femur (AO Surgery Reference, distal femur, condylar LCP),
# 3.5 mm in the forearm, fibula and the rest (Wheeless, "Cortex screw: 3.5 mm").
_V1_SCREW_MM = 3.5
_SCREW_PITCH_MM = {1.5: 0.5, 2.0: 0.6, 3.5: 1.25, 4.5: 1.75}  # ISO 5835 HA thread pitches


def implant_screw_mm(bone_name: str, version: int) -> float:
    """Thread diameter (mm) of the cortex screws of the plate system used on `bone_name`."""
    if version < 2:
        return _V1_SCREW_MM
    if bone_name == "femur":
        return 4.5
    if bone_name.endswith(("_pp", "_mp", "_dp")) or bone_name.startswith("toe"):
        return 1.5  # phalanges of the hand and foot
    if bone_name.endswith("_mc") or bone_name.startswith("mt"):
        return 2.0  # metacarpals and metatarsals
    return _V1_SCREW_MM


def _inside(p: np.ndarray, field: Field, margin: float) -> bool:
    x0, y0, x1, y1 = field
    return x0 + margin <= p[0] <= x1 - margin and y0 + margin <= p[1] <= y1 - margin


def _axis2d(bone: Bone) -> tuple[np.ndarray, np.ndarray, float]:
    a = np.asarray(bone.axis[0][:2], float)
    b = np.asarray(bone.axis[1][:2], float)
    return a, b, float(np.linalg.norm(b - a))


def _candidates(
    scene: Scene, field: Field, min_radius: float, tubular_only: bool = False, min_len: float = 0.0
) -> list[Candidate]:
    """Bones with enough size and the axis parameters t whose point lies inside the field."""
    out = []
    margin = 0.04 * (field[2] - field[0])
    for bone in scene.bones:
        if any(s in bone.name for s in _SKIP) or bone.radius < min_radius:
            continue
        if tubular_only and not bone.tubular:
            continue
        a, b, length = _axis2d(bone)
        if length < max(4.0, bone.radius * 1.2):
            continue
        lo, hi = (0.15, 0.85) if bone.tubular else (0.35, 0.65)
        ts = [
            t
            for t in np.linspace(lo, hi, 15)
            if _inside(a + (b - a) * t, field, margin + bone.radius)
        ]
        if len(ts) >= 3 and len(ts) * length / 15 >= min_len:
            out.append((bone, ts))
    return out


def _pick(rng: np.random.Generator, cands: list[Candidate], weight_by_radius: bool) -> Candidate:
    w = np.array(
        [
            (b.radius if weight_by_radius else 1.0) * (2.0 if b.name in _BIG_LONG else 1.0)
            for b, _ in cands
        ]
    )
    k = int(rng.choice(len(cands), p=w / w.sum()))
    return cands[k]


def place_fracture(
    rng: np.random.Generator,
    scene: Scene,
    field: Field,
    severity: str,
    spacing: float,
    bone_name: str | None = None,
    t: float | None = None,
) -> Fracture | None:
    """A transverse or oblique fracture line crossing a visible bone."""
    cands = _candidates(scene, field, min_radius=2.5)
    if bone_name is not None:
        cands = [c for c in cands if c[0].name == bone_name] or cands
    if not cands:
        return None
    bone, ts = _pick(rng, cands, weight_by_radius=False)
    t = float(rng.choice(ts)) if t is None else t
    a, b, length = _axis2d(bone)
    e = (b - a) / length
    obl = np.radians(rng.uniform(-35, 35))
    n = np.array([e[0] * np.cos(obl) - e[1] * np.sin(obl), e[0] * np.sin(obl) + e[1] * np.cos(obl)])
    c = a + (b - a) * t
    px_mm = 1.0 / spacing
    k = SEVERITIES.index(severity)
    width = max(1.0, float(rng.uniform(*((0.3, 0.6), (0.6, 1.2), (1.0, 2.4))[k])) * px_mm)
    depth = float(rng.uniform(0.55, 0.8)) if k == 0 else 1.0
    waves = tuple(
        (
            float(rng.uniform(0.15, 0.5) * width + 0.3 * px_mm),
            float(2 * np.pi / (rng.uniform(2.5, 9.0) * px_mm)),
            float(rng.uniform(0, 2 * np.pi)),
        )
        for _ in range(2)
    )
    angle, shift = 0.0, (0.0, 0.0)
    if k == 2 or (k == 1 and rng.random() < 0.5):
        perp = np.array([-e[1], e[0]]) * rng.choice([-1, 1])
        amount = bone.radius * (rng.uniform(0.1, 0.3) if k == 1 else rng.uniform(0.3, 0.9))
        along = -e * bone.radius * (rng.uniform(0, 0.4) if k == 2 else 0.0)
        s = perp * amount + along
        shift = (float(s[0]), float(s[1]))
        angle = float(rng.uniform(-6, 6) if k == 1 else rng.uniform(-20, 20))
    return Fracture(
        bone.name,
        (float(c[0]), float(c[1])),
        (float(n[0]), float(n[1])),
        width,
        depth,
        waves,
        angle,
        shift,
        half_len=bone.radius * 3.2,
        site=bone.site_at(t),
        severity=severity,
    )


def place_lesion(
    rng: np.random.Generator, scene: Scene, field: Field, kind: str, severity: str
) -> Lesion | None:
    """A lesion centred inside a visible bone (aggressive, intermediate, lytic_benign, sclerotic)."""
    # the patella hides behind the femur on AP views: a lesion there would be invisible
    cands = [c for c in _candidates(scene, field, min_radius=3.5) if c[0].name != "patella"]
    if not cands:
        return None
    bone, ts = _pick(rng, cands, weight_by_radius=True)
    inner_ts = [t for t in ts if 0.2 <= t <= 0.78] or ts  # keep clear of the articular ends
    t = float(rng.choice(inner_ts))
    a, b, length = _axis2d(bone)
    e = (b - a) / length
    perp = np.array([-e[1], e[0]])
    r = bone.radius
    k = SEVERITIES.index(severity)
    size = {
        "aggressive": (0.6, 1.1),
        "intermediate": (0.5, 0.9),
        "lytic_benign": (0.35, 0.75),
        "sclerotic": (0.2, 0.5),
    }[kind]
    radius = r * float(rng.uniform(*size)) * (0.95 + 0.2 * k)
    offset = float(rng.uniform(-0.25, 0.25)) * r
    breach = 0.0
    if kind == "aggressive":
        offset = float(rng.choice([-1, 1])) * (r - radius * 0.6)
        breach = (0.45, 0.7, 0.9)[k]
    c = a + (b - a) * t + perp * offset
    strength = (0.4, 0.65, 0.9)[k]
    depth = 2 * radius * strength * (0.5 if kind == "sclerotic" else 0.9)
    rough = {"aggressive": 0.16, "intermediate": 0.09, "lytic_benign": 0.03, "sclerotic": 0.05}
    harmonics = tuple(
        (float(rng.uniform(0, rough[kind])), float(rng.uniform(0, 2 * np.pi))) for _ in range(5)
    )
    holes: tuple[tuple[float, float, float], ...] = ()
    if kind == "aggressive":
        n_holes = int(rng.integers(14, 34))
        ang = rng.uniform(0, 2 * np.pi, n_holes)
        rad = radius * np.sqrt(rng.uniform(0.2, 2.6, n_holes))
        hr = np.maximum(radius * rng.uniform(0.09, 0.22, n_holes), 1.0)
        holes = tuple(
            (float(c[0] + q * np.cos(g)), float(c[1] + q * np.sin(g)), float(h))
            for g, q, h in zip(ang, rad, hr, strict=True)
        )
    axis_angle = float(np.degrees(np.arctan2(e[1], e[0])))
    elong = float(rng.uniform(1.0, 1.8)) if kind != "sclerotic" else float(rng.uniform(1, 1.4))
    return Lesion(
        bone.name,
        kind,
        (float(c[0]), float(c[1])),
        radius,
        depth,
        harmonics,
        elong=1.0 / elong,
        angle=axis_angle,
        breach=breach,
        site=bone.site_at(t),
        severity=severity,
        holes=holes,
    )


def place_implant(
    rng: np.random.Generator, scene: Scene, field: Field, spacing: float, version: int = 1
) -> tuple[Implant, float] | None:
    """A plate with bicortical screws along a visible long bone; returns it and its axis t.

    The plate and screws are those of the 3.5 mm small-fragment system (plate 3.5 mm thick,
    10-13 mm wide, a screw every 12 mm); from generator version 2 on, they are scaled to the
    system used on the host bone (`implant_screw_mm`). The random draws are the same in every
    version, so the rest of the image does not change.
    """
    px = 1.0 / spacing
    cands = _candidates(scene, field, min_radius=2.5, tubular_only=True, min_len=30 * px)
    if not cands:
        return None
    bone, ts = _pick(rng, cands, weight_by_radius=True)
    a, b, length = _axis2d(bone)
    e = (b - a) / length
    perp = np.array([-e[1], e[0]]) * rng.choice([-1, 1])
    t_lo, t_hi = min(ts), max(ts)
    span = min((t_hi - t_lo) * length, max(14 * bone.radius, 35 * px), 130 * px)
    mid = float(
        rng.uniform(
            t_lo * length + span / 2, max(t_hi * length - span / 2, t_lo * length + span / 2)
        )
    )
    r = bone.radius
    edge_on = bool(rng.random() < 0.7)
    screw_mm = implant_screw_mm(bone.name, version)
    scale = screw_mm / _V1_SCREW_MM  # 1 in version 1: the plate of the 3.5 mm system
    thick, width = 3.5 * scale * px, float(rng.uniform(10, 13)) * scale * px
    if edge_on:
        off = r + thick / 2
        p0 = a + e * (mid - span / 2) + perp * off
        p1 = a + e * (mid + span / 2) + perp * off
        in_plane, path = thick, width
    else:
        p0 = a + e * (mid - span / 2)
        p1 = a + e * (mid + span / 2)
        in_plane, path = width, thick
    n_screws = int(np.clip(span / (12 * scale * px), 3, 8))
    screws = []
    for k in range(n_screws):
        s = mid - span / 2 + span * (k + 0.5) / n_screws
        base = a + e * s
        if edge_on:
            start = base + perp * (r + thick)
            end = base - perp * (r + 1.5 * px)
        else:
            start = end = base
        screws.append((float(start[0]), float(start[1]), float(end[0]), float(end[1])))
    t_mid = mid / length
    implant = Implant(
        bone.name,
        (float(p0[0]), float(p0[1])),
        (float(p1[0]), float(p1[1])),
        in_plane,
        path,
        tuple(screws),
        screw_mm / 2 * px,
        max(_SCREW_PITCH_MM[screw_mm] * px, 2.5),
        edge_on,
        site=bone.site_at(t_mid),
    )
    return implant, t_mid
