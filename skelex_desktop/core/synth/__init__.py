"""SynthMSK: procedural musculoskeletal radiographs with pixel-level ground truth.

`generate_image` renders one radiograph in memory; `generate_dataset` writes a whole data set
(DICOM or 16-bit PNG + sidecar, masks, ground_truth.csv, findings.json) deterministically.
"""

from .dataset import SynthConfig, SynthResult, generate_dataset, make_plan
from .image import GENERATOR_VERSION, GENERATOR_VERSIONS, SynthFinding, SynthImage, generate_image
from .views import REGIONS

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_VERSIONS",
    "REGIONS",
    "SynthConfig",
    "SynthFinding",
    "SynthImage",
    "SynthResult",
    "generate_dataset",
    "generate_image",
    "make_plan",
]
