"""The caveat the viewer shows next to an error map whose own calibration measured it weak."""

from __future__ import annotations

import json

from skelex_desktop.core.domain import MIN_RELIABLE_AUROC
from skelex_desktop.core.inference.reliability import map_caveat
from skelex_desktop.core.resources import bundled_models_dir
from skelex_desktop.core.review.decisions import MIN_CONFIRM_AUROC


def test_the_demo_map_carries_the_caveat_of_its_calibration() -> None:
    manifest = json.loads((bundled_models_dir() / "skelex-demo" / "manifest.json").read_text())
    record = manifest["errormap"]["calibration"]
    caveat = map_caveat(manifest["errormap"])
    assert caveat is not None and caveat.startswith("Weak map")
    assert f"abnormal vs normal images AUROC {record['image_auroc']:.2f}" in caveat
    assert f"{record['finding_pixel_auroc_inside_bone']:.2f}" in caveat


def test_only_measured_weakness_gives_a_caveat() -> None:
    good = {"image_auroc": 0.91, "finding_pixel_auroc_inside_bone": 0.88}
    assert map_caveat({"calibration": good}) is None
    one_weak = {**good, "finding_pixel_auroc_inside_bone": 0.69}
    caveat = map_caveat({"calibration": one_weak})
    assert caveat is not None and "finding pixels vs normal bone AUROC 0.69" in caveat
    assert "abnormal vs normal images" not in caveat
    # calibrated on normal studies only (`model calibrate`): nothing measured, no caveat
    assert map_caveat({"calibration": {"image_auroc": None, "data": "normal studies"}}) is None
    assert map_caveat({}) is None
    assert map_caveat({"calibration": "broken"}) is None
    assert map_caveat({"calibration": {"image_auroc": float("nan")}}) is None
    assert MIN_CONFIRM_AUROC == MIN_RELIABLE_AUROC  # one bar for heads and maps


def test_carried_measures_give_the_caveat_of_a_user_calibrated_package() -> None:
    synth = {"data": "SynthMSK", "image_auroc": 0.58, "finding_pixel_auroc_inside_bone": 0.64}
    user_record = {"source": "user normal studies", "image_auroc": None, "synthmsk": synth}
    caveat = map_caveat({"calibration": user_record})
    assert caveat is not None and "AUROC 0.58" in caveat and "AUROC 0.64" in caveat
