"""Generate one synthetic radiograph in memory, with its ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .lesions import Fracture, Lesion
from .physics import Exposure, draw_marker, expose, line_integral, to_stored, trabecular_texture
from .placement import SEVERITIES, Field, place_fracture, place_implant, place_lesion
from .render import Finding, render_paths
from .scene import Scene
from .views import BODY_PARTS, REGIONS, build_view

# The generator's version: what a given (seed, index) renders. Version 1 is SynthMSK as first
# released; version 2 sizes implants to the host bone (docs/SYNTH.md, "SynthMSK against the
# literature"). Pass `version=1` to reproduce images and figures made before version 2.
GENERATOR_VERSION = 2
GENERATOR_VERSIONS = (1, 2)

FINDING_KINDS = ("fracture", "lytic_lesion", "benign_lesion", "implant", "osteoarthritis")
_KIND_WEIGHTS = {
    "knee": (0.22, 0.14, 0.14, 0.15, 0.35),
    "other": (0.4, 0.2, 0.2, 0.2, 0.0),
}
TUMOUR_OF_KIND = {
    "aggressive": "malignant",
    "intermediate": "intermediate",
    "lytic_benign": "benign",
    "sclerotic": "benign",
}


@dataclass
class SynthFinding:
    """One finding: its type, pixel mask, bounding box and labels."""

    type: str  # fracture | lytic_lesion | benign_lesion | implant | osteoarthritis
    mask: np.ndarray  # bool, image size
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive-exclusive) in pixels
    location: str
    severity: str
    detail: str = ""
    host_mask: np.ndarray | None = field(default=None, repr=False)
    spec: Finding | None = field(default=None, repr=False)  # image-pixel parameters (not OA)


@dataclass
class SynthImage:
    """Stored pixels (in `meta['photometric']` convention), anatomy mask, findings and labels."""

    pixels: np.ndarray
    bone_mask: np.ndarray
    findings: list[SynthFinding]
    labels: dict[str, Any]
    meta: dict[str, Any]

    def monochrome2(self) -> np.ndarray:
        """Pixels with bone bright, whatever the stored photometric interpretation."""
        if self.meta["photometric"] == "MONOCHROME1":
            return (2 ** self.meta["bits_stored"] - 1 - self.pixels.astype(np.int32)).astype(
                np.uint16
            )
        return self.pixels


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return (0, 0, 0, 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _exposure(rng: np.random.Generator, region: str, size: int, bits: int) -> Exposure:
    thick = region in ("knee", "forearm", "ankle")
    margin = rng.uniform(0.0, 0.12, 4) * size
    if rng.random() < 0.25:
        margin[:] = 0.0  # uncollimated to the image edge
    field = (float(margin[0]), float(margin[1]), float(size - margin[2]), float(size - margin[3]))
    return Exposure(
        photons=float(rng.uniform(1500, 4000) * (1.6 if thick else 1.0)),
        scatter=float(rng.uniform(0.25, 0.45) if thick else rng.uniform(0.1, 0.25)),
        field=field,
        field_angle=float(rng.normal(0, 1.0)),
        heel=float(rng.uniform(0.0, 0.08)),
        bits=bits,
        unsharp=float(rng.uniform(0.6, 1.3)),
        blur=float(rng.uniform(0.4, 0.8) * size / 1024 + 0.2),
    )


def _place(
    rng: np.random.Generator,
    kind: str | None,
    scene: Scene,
    field: Field,
    severity: str,
    spacing: float,
    version: int,
) -> list[tuple[Finding, str]]:
    """Finding specs (with their types) for the requested kind; may be empty if nothing fits."""
    out: list[tuple[Finding | None, str]] = []
    if kind == "fracture":
        out.append((place_fracture(rng, scene, field, severity, spacing), "fracture"))
    elif kind in ("lytic_lesion", "benign_lesion"):
        sub = (
            ("aggressive", "intermediate")
            if kind == "lytic_lesion"
            else ("lytic_benign", "sclerotic")
        )
        lkind = sub[int(rng.random() < (0.35 if kind == "lytic_lesion" else 0.4))]
        out.append((place_lesion(rng, scene, field, lkind, severity), kind))
    elif kind == "implant":
        placed = place_implant(rng, scene, field, spacing, version)
        if placed is not None:
            implant, t_mid = placed
            out.append((implant, "implant"))
            if rng.random() < 0.5:
                frac = place_fracture(
                    rng, scene, field, "subtle", spacing, bone_name=implant.bone, t=t_mid
                )
                out.append((frac, "fracture"))
    return [(s, t) for s, t in out if s is not None]


def generate_image(
    seed: int = 0,
    index: int = 0,
    *,
    size: int = 512,
    region: str | None = None,
    view: str | None = None,
    laterality: str | None = None,
    abnormal: bool | None = None,
    finding: str | None = None,
    severity: str | None = None,
    modality: str | None = None,
    photometric: str | None = None,
    quantum_noise: bool = True,
    version: int = GENERATOR_VERSION,
) -> SynthImage:
    """Render one radiograph; every random choice is drawn from (seed, index).

    Arguments left as None are drawn at random; given ones override the draw, so the rest of
    the image does not change when one of them is fixed. `quantum_noise=False` renders the
    expected image (the same anatomy, texture and exposure, no detector noise). `version`
    selects the generator version (`GENERATOR_VERSIONS`; default the latest): version 1
    renders what SynthMSK rendered before versions existed, byte for byte.
    """
    if version not in GENERATOR_VERSIONS:
        raise ValueError(f"unknown SynthMSK generator version {version!r}: {GENERATOR_VERSIONS}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 7]))
    d_region = REGIONS[int(rng.integers(len(REGIONS)))]
    region = region or d_region
    part = BODY_PARTS[region]
    d_view = part.views[int(rng.integers(len(part.views)))]
    view = view or d_view
    d_lat = "L" if rng.random() < 0.5 else "R"
    laterality = laterality or d_lat
    d_abn = bool(rng.random() < 0.5)
    abnormal = d_abn if abnormal is None else abnormal
    weights = np.array(_KIND_WEIGHTS["knee" if region == "knee" else "other"])
    d_kind = FINDING_KINDS[int(rng.choice(len(FINDING_KINDS), p=weights / weights.sum()))]
    if finding is not None:
        abnormal = True
    kind = (finding or d_kind) if abnormal else None
    d_sev = SEVERITIES[int(rng.choice(3, p=[0.3, 0.4, 0.3]))]
    severity = severity or d_sev
    d_mod = "CR" if rng.random() < 0.5 else "DX"
    modality = modality or d_mod
    d_bits = 12 if modality == "CR" or rng.random() < 0.4 else 14
    d_photo = "MONOCHROME1" if rng.random() < (0.4 if modality == "CR" else 0.2) else "MONOCHROME2"
    photometric = photometric or d_photo
    if kind == "osteoarthritis" and region != "knee":
        raise ValueError("osteoarthritis findings exist only on knee images")

    kl_grade: int | None = None
    if region == "knee":
        kl_grade = int(rng.integers(2, 5)) if kind == "osteoarthritis" else int(rng.random() < 0.3)
        if kind == "osteoarthritis":
            severity = SEVERITIES[kl_grade - 2]
    geo_rng = np.random.default_rng(rng.integers(2**63))
    geo = build_view(region, view, laterality, size, geo_rng, kl_grade or 0)
    exp = _exposure(rng, region, size, d_bits)
    spacing = geo.spacing_mm

    f_rng = np.random.default_rng(rng.integers(2**63))
    tex = trabecular_texture(rng, size, spacing)
    specs: list[tuple[Finding, str]] = []
    maps = None
    for attempt in range(4):
        try_kind = kind if attempt == 0 else "fracture"
        specs = _place(f_rng, try_kind, geo.scene, exp.field, severity, spacing, version)
        maps = render_paths(geo.scene, size, [s for s, _ in specs])
        if not abnormal or kind == "osteoarthritis" or any(m.any() for m in maps.finding_masks):
            break
    assert maps is not None
    marker_box = draw_marker(maps.metal, laterality, exp, maps.soft, spacing)
    mu_l = line_integral(maps, tex, spacing)
    quanta = expose(mu_l, exp, rng, spacing, quantum_noise)
    body = (maps.soft > 0) & (maps.metal < 0.5)
    stored, wc, ww = to_stored(quanta, exp, spacing, body)
    top = 2**exp.bits - 1
    if photometric == "MONOCHROME1":
        stored = (top - stored.astype(np.int32)).astype(np.uint16)
        wc = top - wc

    findings: list[SynthFinding] = []
    tumour = "none"
    for (spec, ftype), mask, host in zip(specs, maps.finding_masks, maps.host_masks, strict=True):
        if not mask.any():
            continue
        if isinstance(spec, Lesion):
            detail = spec.kind
            tumour = TUMOUR_OF_KIND[spec.kind]
        elif isinstance(spec, Fracture):
            detail = "displaced" if spec.displaced else "non-displaced"
        else:
            detail = "plate edge-on" if spec.edge_on else "plate en face"
        findings.append(
            SynthFinding(ftype, mask, _box(mask), spec.site, spec.severity, detail, host, spec)
        )
    if kind == "osteoarthritis" and kl_grade is not None and kl_grade >= 2:
        mask = (maps.osteophyte_mask | maps.joint_mask) & (maps.soft > 0)
        findings.append(
            SynthFinding(
                "osteoarthritis",
                mask,
                _box(mask),
                "distal femur",
                severity,
                f"KL{kl_grade}",
                maps.bone_mask,
            )
        )

    labels = {
        "abnormal": int(bool(findings)),
        "fracture": int(any(f.type == "fracture" for f in findings)),
        "implant": int(any(f.type == "implant" for f in findings)),
        "tumour_category": tumour,
        "kl_grade": kl_grade,
        "anatomical_location": findings[0].location if findings else "",
        "finding_types": [f.type for f in findings],
    }
    meta = {
        "region": region,
        "body_part": BODY_PARTS[region].name,
        "view": view,
        "laterality": laterality,
        "spacing_mm": spacing,
        "modality": modality,
        "photometric": photometric,
        "bits_stored": exp.bits,
        "window_center": float(wc),
        "window_width": float(ww),
        "size": size,
        "field": exp.field,
        "marker_box": marker_box,
        "kvp": float(
            round(
                rng.uniform(48, 60) if region in ("hand", "wrist", "foot") else rng.uniform(55, 70)
            )
        ),
        "exposure_mas": float(round(exp.photons / 600.0, 1)),
        "requested_abnormal": bool(abnormal),
        "requested_finding": kind or "",
        "generator_version": version,
    }
    return SynthImage(stored, maps.bone_mask, findings, labels, meta)
