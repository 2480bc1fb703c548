"""SynthMSK generator versions: version 1 renders what SynthMSK rendered before versions existed
(byte for byte), version 2 differs only in the implant sizes (docs/SYNTH.md, "SynthMSK against
the literature")."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skelex_desktop.core.synth import (
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    SynthConfig,
    SynthImage,
    generate_dataset,
    generate_image,
)
from skelex_desktop.core.synth.lesions import Implant
from skelex_desktop.core.synth.placement import implant_screw_mm

SIZE = 256
# sha256 of pixels, bone mask and findings (type, box, mask) at 256 px, computed with the code
# of commit eaa940d, before generator versions existed.
V1_HASHES: list[tuple[int, int, dict[str, Any], str]] = [
    (0, 0, {}, "b468781cd275a2d0ef138fcede5dcf4cd345285fcc5f6fdf68602bc2b5ac69df"),
    (
        0,
        1,
        {"finding": "fracture", "severity": "subtle"},
        "fe62cd50b67dad56b013776a8951be0916e3231f87fae6b5e068176d9086e6e4",
    ),
    (
        0,
        2,
        {"finding": "fracture", "severity": "obvious"},
        "e52452440d54f2ec3d2c06d992bc556532926fbac49b344d323be5b358dbfc3d",
    ),
    (
        0,
        3,
        {"finding": "lytic_lesion"},
        "d32b63262acd10a22b08df45374bd0d7a5ab1aeab0ca57ca59df537a31ec01ca",
    ),
    (
        0,
        4,
        {"finding": "benign_lesion"},
        "08503219ece7b5dbf6fad71af434ae9744d5f0d11f0a3037da718c8301253976",
    ),
    (
        0,
        6,
        {"region": "knee", "finding": "osteoarthritis"},
        "3bd6cef93d3fbe94a6d29e62d74d4dd3df18b66f7fc6f1cb769ca061ddce2cc7",
    ),
    (
        7,
        11,
        {"abnormal": False},
        "12d1bc70e2a351a2db46daa754c9d38cf8e756acc0665731b578766c7529b0b4",
    ),
    (
        7,
        12,
        {"region": "knee", "abnormal": False},
        "7e5dc4a363350876408221fa7a81a847a7a7569d7c556e85ff3335ad185eda68",
    ),
    (
        7,
        13,
        {"region": "hand", "finding": "benign_lesion", "severity": "subtle"},
        "0e3a9c9da2f319472cfab0053948ffb04632c345ce4a540ad48c80bc85329636",
    ),
]
# implants: hand (with a fracture under the plate), distal femur, metatarsal, radius
V1_IMPLANT_HASHES: list[tuple[int, int, dict[str, Any], str]] = [
    (
        0,
        5,
        {"finding": "implant"},
        "740572f162dc8f871e473773ba48ff5c15d4b0804e7617060948983dc323b2b8",
    ),
    (
        3,
        22,
        {"region": "knee", "finding": "implant"},
        "4507d8471c536365ab430db1c3f59aef7eb1d134824d808e633e2322c698bc42",
    ),
    (
        3,
        20,
        {"region": "foot", "finding": "implant"},
        "8ef1bcdaa69c821f4c7bba2e12eadd262f2934993c620737216e959affe614e8",
    ),
    (
        3,
        20,
        {"region": "forearm", "finding": "implant"},
        "444717daf9dde56d8871c0b3ed4f2be45c6f6d8b7f94e57830a93d182a20d71c",
    ),
]


def digest(img: SynthImage) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(img.pixels).tobytes())
    h.update(np.packbits(img.bone_mask).tobytes())
    for f in img.findings:
        h.update(f.type.encode())
        h.update(repr(f.box).encode())
        h.update(np.packbits(f.mask).tobytes())
    return h.hexdigest()


def _implant(img: SynthImage) -> Implant:
    spec = next(f.spec for f in img.findings if f.type == "implant")
    assert isinstance(spec, Implant)
    return spec


def test_latest_version_is_the_default() -> None:
    assert GENERATOR_VERSION == max(GENERATOR_VERSIONS) == 2
    img = generate_image(0, 0, size=64)
    assert img.meta["generator_version"] == GENERATOR_VERSION
    assert generate_image(0, 0, size=64, version=1).meta["generator_version"] == 1
    with pytest.raises(ValueError, match="generator version"):
        generate_image(0, 0, size=64, version=3)


@pytest.mark.parametrize(("seed", "index", "kw", "expected"), V1_HASHES + V1_IMPLANT_HASHES)
def test_version_1_is_byte_identical_to_before(
    seed: int, index: int, kw: dict[str, Any], expected: str
) -> None:
    assert digest(generate_image(seed, index, size=SIZE, version=1, **kw)) == expected


@pytest.mark.parametrize(("seed", "index", "kw", "expected"), V1_HASHES)
def test_version_2_leaves_images_without_implants_alone(
    seed: int, index: int, kw: dict[str, Any], expected: str
) -> None:
    assert digest(generate_image(seed, index, size=SIZE, version=2, **kw)) == expected


@pytest.mark.parametrize(
    ("seed", "index", "kw", "bone_kind", "screw_mm"),
    [
        (0, 5, {"finding": "implant"}, "ring_pp", 1.5),
        (3, 22, {"region": "knee", "finding": "implant"}, "femur", 4.5),
        (3, 20, {"region": "foot", "finding": "implant"}, "mt", 2.0),
        (3, 20, {"region": "forearm", "finding": "implant"}, "radius", 3.5),
    ],
)
def test_version_2_changes_only_the_implant_size(
    seed: int, index: int, kw: dict[str, Any], bone_kind: str, screw_mm: float
) -> None:
    old = generate_image(seed, index, size=SIZE, version=1, **kw)
    new = generate_image(seed, index, size=SIZE, version=2, **kw)
    a, b = _implant(old), _implant(new)
    assert a.bone == b.bone and a.bone.startswith(bone_kind)
    px = 1.0 / new.meta["spacing_mm"]
    # version 1: the 3.5 mm system everywhere; version 2: the host bone's system
    assert 2 * a.screw_r == pytest.approx(3.5 * px)
    assert 2 * b.screw_r == pytest.approx(implant_screw_mm(b.bone, 2) * px)
    assert implant_screw_mm(b.bone, 2) == screw_mm
    scale = screw_mm / 3.5
    assert b.edge_on == a.edge_on and b.site == a.site
    assert max(b.thickness, b.path) == pytest.approx(max(a.thickness, a.path) * scale, rel=1e-5)
    plate_len = float(np.hypot(a.p1[0] - a.p0[0], a.p1[1] - a.p0[1]))
    assert float(np.hypot(b.p1[0] - b.p0[0], b.p1[1] - b.p0[1])) == pytest.approx(plate_len)
    # the same patient, view, exposure and other findings: only the metal differs
    assert np.array_equal(old.bone_mask, new.bone_mask)
    window = ("generator_version", "window_center", "window_width")  # the window sees metal
    assert {k: v for k, v in old.meta.items() if k not in window} == {
        k: v for k, v in new.meta.items() if k not in window
    }
    assert old.labels == new.labels
    others_old = [(f.type, f.box, f.mask.tobytes()) for f in old.findings if f.type != "implant"]
    others_new = [(f.type, f.box, f.mask.tobytes()) for f in new.findings if f.type != "implant"]
    assert others_old == others_new
    if scale == 1.0:
        assert digest(new) == digest(old)
    else:
        assert digest(new) != digest(old)
        area_old = next(f.mask.sum() for f in old.findings if f.type == "implant")
        area_new = next(f.mask.sum() for f in new.findings if f.type == "implant")
        assert (area_new < area_old) == (scale < 1.0)


def test_dataset_records_the_generator_version(tmp_path: Path) -> None:
    cfg = SynthConfig(n=2, seed=5, fmt="png", size=64, workers=1)
    generate_dataset(tmp_path, cfg)
    payload = json.loads((tmp_path / "findings.json").read_text())
    assert payload["generator_version"] == GENERATOR_VERSION
