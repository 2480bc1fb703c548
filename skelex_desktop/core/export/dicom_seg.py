"""DICOM Segmentation of an image's box regions: one binary segment per task.

The SEG is derived from its own copy of the source alone, whichever other objects are exported.
A source with an image plane, a usable Frame of Reference and Pixel Measures gives the SEG its
Frame of Reference and plane (highdicom copies them). Otherwise (a projection radiograph; a plane
without a positive Pixel Spacing or a Slice Thickness, which the Pixel Measures macro of a planar
SEG requires) the SEG has no plane (PS3.3 A.51 needs one only when the source has it): it
carries the source's Frame of Reference UID when there is a usable one, Patient Orientation
from the source or empty (Type 2C), and Pixel Measures only when the source gives both (a
radiograph's spacing stays in the source it references). A Frame of Reference UID that is not a
valid UID or equals the Study Instance UID (not allowed by PS3.3 C.7.4.1.1.1) counts as none;
when the source's IOD requires the Frame of Reference module (CT, MR: highdicom then requires it
of the SEG) the SEG is given its own, derived from the source's SOP Instance UID, which positions
nothing and no other object shares.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
from highdicom._standard_utils import ModuleUsageValues, get_module_usage
from highdicom.seg import (
    SegmentAlgorithmTypeValues,
    SegmentationTypeValues,
    SegmentDescription,
)
from highdicom.spatial import get_image_coordinate_system
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from skelex_desktop.core.export.dicom_common import (
    EQUIPMENT,
    coding_schemes,
    task_concept,
)
from skelex_desktop.core.export.dicom_source import (
    derivation_source,
    drop_plane,
    has_frame_of_reference,
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
    base = derivation_source(source)
    frame = base.FrameOfReferenceUID if has_frame_of_reference(base) else None
    planar = frame is not None and get_image_coordinate_system(base) is not None
    if planar and not _has_pixel_measures(base):
        planar = False  # a plane needs Pixel Measures, which need spacing and thickness
    if not planar:
        drop_plane(base)
        if frame is None and _frame_of_reference_mandatory(base):
            frame = generate_uid(entropy_srcs=["skelex-seg-frame", str(source.SOPInstanceUID)])
        if frame is not None:
            base.FrameOfReferenceUID = frame
    if not planar and not _has_pixel_measures(base):
        for keyword in ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"):
            if keyword in base:
                delattr(base, keyword)
    seg = hd.seg.Segmentation(
        source_images=[base],
        pixel_array=pixels,
        segmentation_type=SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid,
        series_number=9003,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        **EQUIPMENT,
        series_description="SKELEX regions",
        content_label="REGIONS",
        coding_schemes=coding_schemes(),
    )
    if not planar:
        seg.PatientOrientation = source.get("PatientOrientation") or None
    return seg


def _frame_of_reference_mandatory(source: Dataset) -> bool:
    """Whether the source's IOD requires the Frame of Reference module (highdicom then requires
    one for the SEG)."""
    try:
        usage = get_module_usage("frame-of-reference", str(source.SOPClassUID))
    except (KeyError, ValueError):
        return False
    return usage == ModuleUsageValues.MANDATORY


def _has_pixel_measures(source: Dataset) -> bool:
    """Whether `source` gives what the Pixel Measures macro needs: positive spacing, thickness."""
    try:
        spacing = [float(v) for v in source.get("PixelSpacing") or []]
        thickness = float(source.get("SliceThickness") or 0)
    except (TypeError, ValueError):
        return False
    return len(spacing) == 2 and min(spacing) > 0 and thickness > 0
