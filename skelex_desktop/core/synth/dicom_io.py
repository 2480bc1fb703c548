"""Encode a synthetic radiograph as a CR or DX (For Presentation) DICOM file."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from .demographics import MANUFACTURERS, Patient, Study
from .image import SynthImage

CR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1"
DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image - For Presentation
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"
# SNOMED CT codes for the Anatomic Region Sequence of the DX Anatomy Imaged module
_ANATOMY = {
    "HAND": ("85562004", "Hand"),
    "WRIST": ("74670003", "Wrist joint"),
    "FOREARM": ("14975008", "Forearm"),
    "KNEE": ("72696002", "Knee"),
    "ANKLE": ("70258002", "Ankle joint"),
    "FOOT": ("56459004", "Foot"),
}
_ORIENTATION = {"PA": ("L", "F"), "AP": ("R", "F"), "LAT": ("A", "F")}


def instance_uids(seed: int, index: int, study_uid: str, series_number: int) -> tuple[str, str]:
    """Deterministic series and SOP instance UIDs."""
    series = generate_uid(entropy_srcs=["skelex-synth", "series", study_uid, str(series_number)])
    sop = generate_uid(entropy_srcs=["skelex-synth", "sop", str(seed), str(index)])
    return str(series), str(sop)


def build_dataset(
    img: SynthImage,
    patient: Patient,
    study: Study,
    series_uid: str,
    sop_uid: str,
    series_number: int,
    instance_number: int,
    variant: int,
) -> Dataset:
    """The full DICOM data set (with file meta) for one image; `variant` picks optional tags."""
    m: dict[str, Any] = img.meta
    modality = m["modality"]
    sop_class = CR_SOP_CLASS if modality == "CR" else DX_SOP_CLASS
    maker, model = MANUFACTURERS[modality][study.station % len(MANUFACTURERS[modality])]
    rows, cols = img.pixels.shape

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    meta.ImplementationVersionName = "SKELEX_SYNTH_1"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    ds.Manufacturer = maker
    ds.ManufacturerModelName = model
    ds.InstitutionName = study.institution
    ds.ReferringPhysicianName = study.referring
    ds.StationName = f"XR{study.station:02d}"
    ds.StudyDescription = f"XR {m['body_part']} {m['laterality']}"
    ds.SeriesDescription = f"{m['body_part']} {m['view']}"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.BodyPartExamined = m["body_part"]
    ds.KVP = f"{m['kvp']:.0f}"
    ds.Exposure = int(round(m["exposure_mas"]))
    ds.ViewPosition = m["view"]
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = list(_ORIENTATION[m["view"]])
    ds.Laterality = m["laterality"]
    ds.ImageLaterality = m["laterality"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = m["photometric"]
    ds.Rows = rows
    ds.Columns = cols
    spacing = [f"{m['spacing_mm']:.6f}", f"{m['spacing_mm']:.6f}"]
    magnification = 1.0 + 0.02 * (variant % 7)
    if modality == "DX" and variant % 3 == 0:
        ds.PixelSpacing = spacing  # calibrated at the patient
        ds.ImagerPixelSpacing = [f"{m['spacing_mm'] * magnification:.6f}"] * 2
        ds.PixelSpacingCalibrationType = "GEOMETRY"
    else:
        ds.ImagerPixelSpacing = [f"{m['spacing_mm'] * magnification:.6f}"] * 2
        if variant % 2 == 0:
            ds.EstimatedRadiographicMagnificationFactor = f"{magnification:.3f}"
    ds.BitsAllocated = 16
    ds.BitsStored = m["bits_stored"]
    ds.HighBit = m["bits_stored"] - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = f"{m['window_center']:.1f}"
    ds.WindowWidth = f"{m['window_width']:.1f}"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    mono1 = m["photometric"] == "MONOCHROME1"
    if modality == "DX":
        ds.PresentationLUTShape = "INVERSE" if mono1 else "IDENTITY"
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.DetectorType = ("SCINTILLATOR", "DIRECT")[variant % 2]
        ds.DetectorConfiguration = "AREA"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1 if mono1 else -1
        code, meaning = _ANATOMY[m["body_part"]]
        region = Dataset()
        region.CodeValue = code
        region.CodingSchemeDesignator = "SCT"
        region.CodeMeaning = meaning
        ds.AnatomicRegionSequence = Sequence([region])
        ds.ViewCodeSequence = Sequence([])
        ds.PositionerType = "NONE"
    else:
        ds.PlateType = "IP"
    ds.PixelData = np.ascontiguousarray(img.pixels, dtype="<u2").tobytes()
    return ds


def encode(ds: Dataset) -> bytes:
    """Serialise with a preamble and file meta (Part 10), explicit VR little endian."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
