"""DICOM Parametric Map holding a model's float error map over the source image.

The map (a .npy file of the prediction) is resized to the image when its size differs. highdicom
0.28 cannot build a Parametric Map over a source without a Frame of Reference (projection
radiographs have none), so such a source is given a nominal image plane for construction: a new
Frame of Reference UID, identity orientation, origin 0 and the image's pixel spacing. The map is
pixel-aligned with the source; the plane claims nothing about patient anatomy.
"""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import highdicom as hd
import numpy as np
from highdicom.pm import ParametricMap, RealWorldValueMapping
from pydicom.dataset import Dataset

from skelex_desktop.core.export.dicom_common import (
    EQUIPMENT,
    NO_UNITS,
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


def _with_plane(source: Dataset) -> Dataset:
    if "FrameOfReferenceUID" in source:
        return source
    plane = copy.copy(source)
    spacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing") or [1.0, 1.0]
    plane.FrameOfReferenceUID = hd.UID()
    plane.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    plane.ImagePositionPatient = [0, 0, 0]
    plane.PixelSpacing = [float(s) for s in spacing]
    plane.SliceThickness = 1
    return plane


def build_pm(
    source: Dataset,
    error_map: np.ndarray,
    model: ModelInfo | None,
    series_uid: str,
    instance_number: int,
) -> ParametricMap:
    low, high = float(error_map.min()), float(error_map.max())
    center, width = np.percentile(error_map, 50), np.percentile(error_map, 99.5) - low
    mapping = RealWorldValueMapping(
        lut_label="ERROR",
        lut_explanation=f"reconstruction error of {model.label}" if model else "error map",
        unit=NO_UNITS,
        value_range=(low, high if high > low else low + 1.0),
        slope=1,
        intercept=0,
    )
    return ParametricMap(
        source_images=[_with_plane(source)],
        pixel_array=error_map,
        series_instance_uid=series_uid,
        series_number=9002,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        **EQUIPMENT,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[
            hd.VOILUTTransformation(
                window_center=float(center), window_width=float(max(width, 1e-6))
            )
        ],
        content_label="ERRORMAP",
        content_description="SKELEX error map",
        series_description="SKELEX error maps",
    )
