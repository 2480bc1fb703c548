"""The exposed field: collimator blades (straight and rotated), markers, the border band, no
cut on uncollimated images, and no stored hotspot on a shutter edge through the real flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skelex_desktop.core.inference.errormap import foreground_mask
from skelex_desktop.core.inference.exposed_field import BORDER_BAND, FIELD_MARGIN, detect_field
from skelex_desktop.core.inference.preprocess import Geometry, Preprocessing, to_model_u8

FULL = Geometry((224, 224), 224, (0, 0, 224, 224))


def collimated(angle_deg: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit image, true field) of a bright noisy shutter around air with a limb in it;
    the field a rectangle x 30..200, y 24..196 turned by `angle_deg` about its centre."""
    import cv2

    rng = np.random.default_rng(seed)
    image = rng.normal(225, 14, (224, 224))  # unexposed: bright, grainy
    field = np.zeros((224, 224), np.uint8)
    box = cv2.boxPoints(((115.0, 110.0), (170.0, 172.0), angle_deg)).astype(np.int32)
    cv2.fillConvexPoly(field, box, 1)
    inside = field > 0
    image[inside] = rng.normal(22, 4, inside.sum())  # air
    limb = inside & (np.abs(np.arange(224)[None, :] - 112) < 30)  # crosses the shutter edge
    image[limb] = rng.normal(115, 6, limb.sum())
    image[(np.abs(np.arange(224)[None, :] - 112) < 30) & ~inside] = rng.normal(
        235, 10, (~inside & (np.abs(np.arange(224)[None, :] - 112) < 30)).sum()
    )
    return np.clip(image, 0, 255).astype(np.uint8), inside


@pytest.mark.parametrize("angle", [0.0, 3.0, -4.0])
def test_blades_of_a_rectangular_or_rotated_collimation_are_found(angle: float) -> None:
    gray, truth = collimated(angle)
    found = detect_field(gray)
    assert {b.side for b in found.blades} == {"left", "top", "right", "bottom"}
    # the field agrees with the truth up to a pixel or two along its edges
    assert (found.field ^ truth).sum() < 0.03 * truth.sum()
    # nothing outside the field is usable, nor the band of half a patch inside it
    import cv2

    inner = cv2.erode(truth.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    band = truth & ~inner
    assert not (found.usable & ~truth).any()
    assert (found.usable & band).sum() < 0.1 * band.sum()
    assert found.usable[inner].mean() > 0.95
    # the anatomy mask follows: the limb inside, not where it meets the shutter
    mask = foreground_mask(np.repeat(gray[..., None], 3, axis=2), FULL)
    limb = truth & (np.abs(np.arange(224)[None, :] - 112) < 30)
    assert (mask & limb & inner).sum() > 0.95 * (limb & inner).sum()
    assert not (mask & ~truth).any()


def test_a_marker_in_the_air_is_left_out_but_an_implant_on_bone_is_not() -> None:
    import cv2

    gray, _ = collimated()
    cv2.putText(gray, "R", (40, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)  # in the air
    gray[90:140, 108:113] = 255  # a plate on the limb (an implant: a finding)
    found = detect_field(gray)
    letter = np.zeros_like(gray, bool)
    letter[38:64, 38:60] = gray[38:64, 38:60] == 255
    assert found.markers[letter].all() and not found.usable[letter].any()
    assert not found.markers[90:140, 108:113].any()
    assert found.usable[90:140, 108:113].all()


def limb_to_the_border(seed: int = 3) -> np.ndarray:
    """No collimation: air on both sides of a limb running off the top and bottom edges."""
    rng = np.random.default_rng(seed)
    image = rng.normal(22, 4, (224, 224))
    xs = np.arange(224)[None, :]
    wobble = 6 * np.sin(np.arange(224) / 30)[:, None]
    image = np.where(np.abs(xs - 112 - wobble) < 40, rng.normal(115, 6, (224, 224)), image)
    image = np.where(np.abs(xs - 112 - wobble) < 14, rng.normal(180, 6, (224, 224)), image)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_no_blade_and_no_cut_on_an_uncollimated_limb_touching_the_border() -> None:
    gray = limb_to_the_border()
    found = detect_field(gray)
    assert found.blades == () and found.field.all()
    b = int(BORDER_BAND)
    assert found.usable[b:-b, b:-b].all()
    assert not found.usable[:b].any() and not found.usable[-b:].any()
    mask = foreground_mask(np.repeat(gray[..., None], 3, axis=2), FULL)
    limb = np.abs(np.arange(224)[None, :] - 112 - 6 * np.sin(np.arange(224) / 30)[:, None]) < 40
    limb[:b] = limb[-b:] = False  # the border band is out by design; nothing else is
    assert (mask & limb).sum() > 0.97 * limb.sum()


def _synth(seed: int, index: int) -> tuple[Any, Any]:
    """A SynthMSK image and the collimation (`Exposure`) the generator drew for it."""
    import skelex_desktop.core.synth.image as synth_image

    captured: list[Any] = []
    original = synth_image._exposure

    def capture(*a: Any, **k: Any) -> Any:
        captured.append(original(*a, **k))
        return captured[-1]

    synth_image._exposure = capture
    try:
        image = synth_image.generate_image(seed, index, size=512, abnormal=True)
    finally:
        synth_image._exposure = original
    return image, captured[-1]


def test_synthmsk_collimation_found_where_the_generator_put_it() -> None:
    """Seed 90210: image 8 is collimated on all four sides (no rotation), image 1 not at all."""
    image, exposure = _synth(90210, 8)
    rgb, _ = to_model_u8(image.monochrome2(), Preprocessing())
    found = detect_field(rgb[..., 0])
    x0, y0, x1, y1 = (v * 224 / 512 for v in exposure.field)
    depth = {"left": x0, "top": y0, "right": 224 - x1, "bottom": 224 - y1}
    assert {b.side for b in found.blades} == set(depth)
    for blade in found.blades:
        assert abs(blade.offset + blade.slope * 112 - depth[blade.side]) < 2.0

    image, exposure = _synth(90210, 1)
    assert exposure.field == (0.0, 0.0, 512.0, 512.0)  # uncollimated
    rgb, geometry = to_model_u8(image.monochrome2(), Preprocessing())
    assert detect_field(rgb[..., 0]).blades == ()
    import cv2

    mask = foreground_mask(rgb, geometry)
    bone = cv2.resize(image.bone_mask.astype(np.uint8), (224, 224), interpolation=cv2.INTER_AREA)
    b = int(BORDER_BAND)
    inner = np.zeros((224, 224), bool)
    inner[b:-b, b:-b] = True
    assert (mask & (bone > 0) & inner).sum() > 0.9 * ((bone > 0) & inner).sum()


def test_hotspots_never_reach_the_shutter_through_the_real_flow(tmp_path: Path) -> None:
    """pydicom-data's RG3 (a leg between two collimator blades) imported and analysed with the
    CLI: every stored hotspot keeps clear of the blades and the image border."""
    import cv2
    import pydicom.data
    from sqlalchemy import select

    from skelex_desktop.cli import main
    from skelex_desktop.core.db.models import Prediction
    from skelex_desktop.core.ingest.pixels import read_frame
    from skelex_desktop.core.settings import Settings
    from skelex_desktop.core.workspace import open_workspace

    source = Path(pydicom.data.get_testdata_file("RG3_UNCR.dcm"))
    data_dir = tmp_path / "data"
    assert main(["--data-dir", str(data_dir), "import", str(source)]) == 0
    assert main(["--data-dir", str(data_dir), "analyze", "--all"]) == 0
    workspace = open_workspace(Settings(data_dir=data_dir), writes=False)
    try:
        with workspace.db.read() as session:
            rows = session.execute(select(Prediction.details)).scalars().all()
    finally:
        workspace.close()
    spots = [h for details in rows if details for h in details.get("hotspots", [])]
    assert spots, "RG3 gives hotspots"

    pixels = read_frame(source, 0).model_pixels
    rgb, _ = to_model_u8(pixels, Preprocessing())
    found = detect_field(rgb[..., 0])
    assert {b.side for b in found.blades} == {"left", "right"}
    rows_, cols = pixels.shape
    outside = cv2.resize(
        (~found.field).astype(np.uint8), (cols, rows_), interpolation=cv2.INTER_NEAREST
    )
    outside[0, :] = outside[-1, :] = outside[:, 0] = outside[:, -1] = 1
    distance = cv2.distanceTransform(1 - outside, cv2.DIST_L2, 5)
    clear = min(FIELD_MARGIN, BORDER_BAND) * max(rows_, cols) / 224 - 2
    for h in spots:
        box = distance[h["y0"] : h["y1"], h["x0"] : h["x1"]]
        assert box.min() >= clear, (h, float(box.min()))
