"""Normal SynthMSK images as a pretraining pool: torch-free, so pool-rendering worker
processes start light (they never import the training code)."""

from __future__ import annotations

import numpy as np

from skelex_desktop.core.inference.preprocess import minmax_to_u8
from skelex_desktop.core.synth.image import generate_image


def render_normal_chunk(seed: int, start: int, stop: int, size: int) -> np.ndarray:
    """[stop - start, size, size] uint8: normal images `start`..`stop - 1` of `seed`, bone
    bright, per-image min-max to 8 bit (the reference preprocessing)."""
    out = np.empty((stop - start, size, size), dtype=np.uint8)
    for j, index in enumerate(range(start, stop)):
        out[j] = minmax_to_u8(generate_image(seed, index, size=size, abnormal=False).monochrome2())
    return out
