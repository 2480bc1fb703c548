"""DICOM Segmentation of an image's box regions: one binary segment per task."""

from __future__ import annotations

import highdicom as hd
import numpy as np
from highdicom.seg import (
    SegmentAlgorithmTypeValues,
    SegmentationTypeValues,
    SegmentDescription,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from skelex_desktop.core.export.dicom_common import (
    EQUIPMENT,
    task_concept,
)
from skelex_desktop.core.export.selection import ExportItem, TaskInfo


def region_masks(
    item: ExportItem, rows: int, cols: int, tasks: list[TaskInfo]
) -> list[tuple[TaskInfo, np.ndarray]]:
    """(task, boolean mask) of each task with boxes on the image, in schema order."""
    out = []
    for task in tasks:
        mask = np.zeros((rows, cols), dtype=bool)
        for r in (r for r in item.regions if r.task == task.name):
            x0, x1 = int(np.floor(max(0.0, r.x0))), int(np.ceil(min(float(cols), r.x1)))
            y0, y1 = int(np.floor(max(0.0, r.y0))), int(np.ceil(min(float(rows), r.y1)))
            mask[y0:y1, x0:x1] = True
        if mask.any():
            out.append((task, mask))
    return out


def build_seg(
    source: Dataset, item: ExportItem, tasks: list[TaskInfo], series_uid: str, instance_number: int
) -> hd.seg.Segmentation | None:
    """The SEG of `item`'s regions over `source`, or None when it has no regions."""
    masks = region_masks(item, int(source.Rows), int(source.Columns), tasks)
    if not masks:
        return None
    descriptions = [
        SegmentDescription(
            segment_number=n,
            segment_label=task.name[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=task_concept(task),
            algorithm_type=SegmentAlgorithmTypeValues.MANUAL,
        )
        for n, (task, _) in enumerate(masks, start=1)
    ]
    pixels = np.stack([m for _, m in masks], axis=-1)[np.newaxis]
    return hd.seg.Segmentation(
        source_images=[source],
        pixel_array=pixels,
        segmentation_type=SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid,
        series_number=9003,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        **EQUIPMENT,
        series_description="SKELEX regions",
    )
