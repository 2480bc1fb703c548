"""DICOM Parametric Map holding a model's float error map over the source image.

The map (a .npy file of the prediction) is resized to the image when its size differs. The
Parametric Map IOD requires a Frame of Reference and an image plane (PS3.3 A.75), which projection
radiographs do not have; a source without an image plane (no Image Position (Patient)) or
without a usable Frame of Reference (none, not a valid UID, or equal to the Study Instance UID,
which PS3.3 does not allow: its plane is then dropped as positioned in no frame) is given a
nominal one on the map's own copy of the source: a Frame of Reference UID derived from the source's
SOP Instance UID, identity orientation, origin 0, slice thickness 1 and the image's pixel spacing
(Pixel Spacing, else Imager Pixel Spacing, else 1 mm when neither is a positive pair). The map is
pixel-aligned with the source; the plane claims nothing about patient anatomy, and no other
exported object shares it. Series Laterality (Type 2C) is the source's Laterality, else its Image
Laterality when R or L, else empty. The window is LINEAR_EXACT: error maps span less than 1.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import highdicom as hd
import numpy as np
from highdicom.pm import ParametricMap, RealWorldValueMapping
from highdicom.spatial import get_image_coordinate_system
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from skelex_desktop.core.export.dicom_common import (
    EQUIPMENT,
    NO_UNITS,
)
from skelex_desktop.core.export.dicom_source import (
    derivation_source,
    drop_plane,
    has_frame_of_reference,
)
from skelex_desktop.core.export.options import ExportError
from skelex_desktop.core.export.selection import ModelInfo


def load_error_map(path: Path, rows: int, cols: int) -> np.ndarray:
    """The error map as float32 rows x cols (resized when needed)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read error map {path.name}: {exc}") from exc
    data = np.squeeze(np.asarray(data, dtype=np.float32))
    if data.ndim != 2:
        raise ExportError(f"error map {path.name} is not a 2-D array (shape {data.shape})")
    if data.shape != (rows, cols):
        data = cv2.resize(data, (cols, rows), interpolation=cv2.INTER_LINEAR)
    return np.nan_to_num(data).astype(np.float32)


def pixel_spacing(source: Dataset) -> list[float]:
    """Pixel Spacing, else Imager Pixel Spacing, else 1 mm: the first positive pair."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            pair = [float(v) for v in source.get(keyword) or []]
        except (TypeError, ValueError):
            continue
        if len(pair) == 2 and min(pair) > 0:
            return pair
    return [1.0, 1.0]


def with_plane(source: Dataset) -> Dataset:
    """The map's copy of `source`, with a nominal image plane when the source has none."""
    plane = derivation_source(source)
    if not has_frame_of_reference(plane):
        drop_plane(plane)  # e.g. a Frame of Reference UID equal to the Study UID: none usable
    elif get_image_coordinate_system(plane) is not None:
        return plane
    plane.FrameOfReferenceUID = generate_uid(
        entropy_srcs=["skelex-nominal-plane", str(source.SOPInstanceUID)]
    )
    plane.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    plane.ImagePositionPatient = [0, 0, 0]
    plane.PixelSpacing = pixel_spacing(source)
    plane.SliceThickness = 1
    for keyword in ("SpacingBetweenSlices", "ImageOrientationSlide"):
        if keyword in plane:
            delattr(plane, keyword)
    return plane


def laterality(source: Dataset) -> str | None:
    """Series Laterality for a derived object: R or L from the source, else None (empty)."""
    for keyword in ("Laterality", "ImageLaterality"):
        value = str(source.get(keyword, "") or "").strip().upper()
        if value in ("R", "L"):
            return value
    return None


def window(error_map: np.ndarray) -> hd.VOILUTTransformation:
    """A LINEAR_EXACT window from the median over the lowest to the 99.5th percentile value."""
    low = float(error_map.min())
    width = float(np.percentile(error_map, 99.5)) - low
    return hd.VOILUTTransformation(
        window_center=float(np.percentile(error_map, 50)),
        window_width=width if width > 0 else 1.0,
        voi_lut_function=hd.VOILUTFunctionValues.LINEAR_EXACT,
    )


def build_pm(
    source: Dataset,
    error_map: np.ndarray,
    model: ModelInfo | None,
    series_uid: str,
    instance_number: int,
) -> ParametricMap:
    low, high = float(error_map.min()), float(error_map.max())
    mapping = RealWorldValueMapping(
        lut_label="ERROR",
        lut_explanation=f"reconstruction error of {model.label}" if model else "error map",
        unit=NO_UNITS,
        value_range=(low, high if high > low else low + 1.0),
        slope=1,
        intercept=0,
    )
    pm = ParametricMap(
        source_images=[with_plane(source)],
        pixel_array=error_map,
        series_instance_uid=series_uid,
        series_number=9002,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        **EQUIPMENT,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[window(error_map)],
        content_label="ERRORMAP",
        content_description="SKELEX error map",
        series_description="SKELEX error maps",
    )
    pm.Laterality = laterality(source)
    return pm
