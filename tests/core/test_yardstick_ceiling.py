"""bench/localisation.py's ceiling: the finding-free twin of an abnormal SynthMSK image differs
from it only at the finding; the noise-free twin differs everywhere by the image's noise."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np

from skelex_desktop.core.inference.preprocess import Preprocessing, to_model_u8
from skelex_desktop.core.synth import generate_image

ROOT = Path(__file__).resolve().parents[2]


def _bench():  # noqa: ANN202 - the bench module
    spec = importlib.util.spec_from_file_location("loc_bench", ROOT / "bench" / "localisation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_twin_residual_is_the_finding_and_the_noise_free_twin_keeps_the_noise() -> None:
    bench = _bench()
    seed, index, size = 90210, 0, 256
    image = generate_image(seed, index, size=size, abnormal=True, finding="lytic_lesion")
    pixels = image.monochrome2()
    gray = to_model_u8(pixels, Preprocessing())[0][..., 0]
    twin = bench.twin_u8(image, pixels, seed, index, size, 224)
    expected = bench.twin_u8(image, pixels, seed, index, size, 224, quantum_noise=False)
    assert twin is not None and expected is not None
    p = bench.Pieces(gray, None, None, None, None, None, twin=twin, expected=expected)
    same_noise = bench.twin_residual(None)(p)
    finding = np.zeros((size, size), np.uint8)
    for f in image.findings:
        finding |= f.mask.astype(np.uint8)
    near = cv2.resize(cv2.dilate(finding, np.ones((15, 15), np.uint8)), (224, 224)) > 0
    assert same_noise[near].max() > 0.02  # the lesion is there ...
    assert same_noise[~near].max() < 0.01  # ... and nothing else differs
    noisy = bench.twin_residual(None, expected=True)(p)
    assert np.median(noisy[~near]) > 0  # the image's own noise stays in the fairer ceiling
    assert bench.twin_residual(None)(bench.Pieces(gray, *[None] * 5)) is None
