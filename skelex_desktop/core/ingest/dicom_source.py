"""Reading DICOM files: validation with specific reasons, header metadata, frame decoding.

Decoding prefers pylibjpeg and falls back to python-gdcm (e.g. 12-bit JPEG Extended), then to
any other plugin pydicom has. Every problem becomes an `IngestError` with a readable reason.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGExtended12Bit,
    MediaStorageDirectoryStorage,
)

from skelex_desktop.core.domain import Calibration
from skelex_desktop.core.ingest.frame import (
    Frame,
    luminance,
    percentile_window,
    to_rgb8,
)
from skelex_desktop.core.ingest.gdcm_fallback import decode_volume, gdcm_available
from skelex_desktop.core.ingest.layout import deterministic_uid
from skelex_desktop.core.ingest.limits import (
    IngestError,
    check_frame_size,
    reraise_interrupts,
    skipped,
)
from skelex_desktop.core.ingest.records import PatientInfo, SeriesInfo, StudyInfo
from skelex_desktop.core.ingest.text import clean, clip, optional_int, parse_date, positive_float

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
COLOUR_PHOTOMETRICS = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"}
_PREFERRED_PLUGINS = ("pylibjpeg", "gdcm")


@dataclass
class DicomFile:
    """A parsed, validated DICOM file whose frames can be decoded one at a time."""

    ds: Dataset
    transfer_syntax: UID
    rows: int
    cols: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    photometric: str
    note: str = ""
    path: Path | None = None
    _gdcm_volume: np.ndarray | None = field(default=None, repr=False)

    @property
    def sop_instance_uid(self) -> str:
        return _text(self.ds, "SOPInstanceUID")


def has_dicm_prefix(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def looks_like_bare_dataset(data: bytes) -> bool:
    """True when a file without preamble starts with a plausible group 0002/0008 tag."""
    if len(data) < 8:
        return False
    little = int.from_bytes(data[0:2], "little")
    big = int.from_bytes(data[0:2], "big")
    return little in (0x0002, 0x0008) or big in (0x0002, 0x0008)


def _read_dataset(data: bytes) -> Dataset:
    force = not has_dicm_prefix(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(io.BytesIO(data), force=force)
    except Exception as exc:
        raise IngestError(f"unreadable DICOM: {_short(exc)}") from exc


def _transfer_syntax(ds: Dataset, prefixed: bool) -> tuple[UID, str]:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        uid = UID(clean(uid))
        if not uid.is_valid:
            raise IngestError(f"invalid Transfer Syntax UID {uid!r}")
        return uid, ""
    if prefixed:
        raise IngestError("missing Transfer Syntax UID")
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        guessed = ImplicitVRLittleEndian
    else:
        guessed = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    ds.file_meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = guessed
    return guessed, f"no file meta: transfer syntax inferred as {guessed.name}"


def _required_int(ds: Dataset, keyword: str) -> int:
    try:
        value = ds.get(keyword)
    except Exception as exc:
        raise IngestError(f"invalid {keyword}: {_short(exc)}") from exc
    if value is None or value == "":
        raise IngestError(f"missing {keyword}")
    number = optional_int(value)
    if number is None:
        raise IngestError(f"invalid {keyword}: {value!r}")
    return number


def _sop_class_name(ds: Dataset) -> str:
    try:
        uid = UID(clip(ds.get("SOPClassUID", ""), 64))
    except Exception:
        return ""
    return uid.name if uid else ""


def parse_dicom(data: bytes, path: Path | None = None) -> DicomFile:
    """Parse and validate `data` (read from `path`); raise IngestError unless it is an image."""
    prefixed = has_dicm_prefix(data)
    if not prefixed and not looks_like_bare_dataset(data):
        raise IngestError("not a DICOM file: no 'DICM' prefix and no dataset at the start")
    ds = _read_dataset(data)
    if not prefixed and "SOPClassUID" not in ds and "PixelData" not in ds:
        raise IngestError("not a DICOM file: no 'DICM' prefix and no SOP Class UID")
    if len(ds) == 0:
        raise IngestError("no data set after the file meta information (truncated file?)")
    meta = getattr(ds, "file_meta", None)
    storage = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    if storage == MediaStorageDirectoryStorage or "DirectoryRecordSequence" in ds:
        raise skipped("DICOMDIR directory file (not an image)")
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        name = _sop_class_name(ds)
        if "Image" in name or "Rows" in ds:
            raise IngestError(f"no pixel data ({name})")
        raise skipped(f"not an image: {name or 'no SOP Class UID'}")
    syntax, note = _transfer_syntax(ds, prefixed)
    try:
        get_decoder(syntax)
    except NotImplementedError as exc:
        raise IngestError(f"unsupported transfer syntax {syntax} ({syntax.name})") from exc
    rows, cols = _required_int(ds, "Rows"), _required_int(ds, "Columns")
    frames = optional_int(ds.get("NumberOfFrames", 1) or 1)
    if frames is None:
        raise IngestError(f"invalid NumberOfFrames: {ds.get('NumberOfFrames')!r}")
    check_frame_size(rows, cols, frames)
    samples = optional_int(ds.get("SamplesPerPixel", 1)) or 1
    bits_allocated = _required_int(ds, "BitsAllocated")
    bits_stored = optional_int(ds.get("BitsStored", bits_allocated)) or bits_allocated
    if bits_allocated not in (1, 8, 16, 32, 64) or not 0 < bits_stored <= bits_allocated:
        raise IngestError(
            f"invalid bit depth: BitsAllocated {bits_allocated}, BitsStored {bits_stored}"
        )
    if samples not in (1, 3):
        raise IngestError(f"unsupported SamplesPerPixel {samples}")
    photometric = clip(ds.get("PhotometricInterpretation", ""), 16).upper()
    if not photometric:
        photometric = "RGB" if samples == 3 else "MONOCHROME2"
        ds.PhotometricInterpretation = photometric
    source = DicomFile(
        ds,
        syntax,
        rows,
        cols,
        frames,
        samples,
        bits_allocated,
        bits_stored,
        photometric,
        note,
        path,
    )
    _check_pixel_length(source)
    return source


def _check_pixel_length(source: DicomFile) -> None:
    ds = source.ds
    keyword = next(k for k in PIXEL_KEYWORDS if k in ds)
    try:
        value = ds[keyword].value
    except Exception as exc:
        raise IngestError(f"unreadable pixel data: {_short(exc)}") from exc
    found = len(value) if value is not None else 0
    if source.transfer_syntax.is_encapsulated and keyword == "PixelData":
        if found < 8 or value[:4] != b"\xfe\xff\x00\xe0":
            raise IngestError("encapsulated pixel data is malformed: no item at its start")
        return
    bits = (
        source.bits_allocated
        if keyword == "PixelData"
        else (32 if keyword == "FloatPixelData" else 64)
    )
    samples = source.samples
    if source.photometric == "YBR_FULL_422" and samples == 3:
        samples = 2  # chroma subsampled horizontally: two samples per pixel on average
    expected = math.ceil(source.rows * source.cols * source.frames * samples * bits / 8)
    if found < expected:
        raise IngestError(f"pixel data truncated: expected {expected} bytes, found {found}")


_single_threaded_decoders = False


def prefer_single_threaded_decoders() -> None:
    """Called in import worker processes: one process per core already, so decoders that
    spawn their own threads (GDCM decodes JPEG 2000 on several) would only contend."""
    global _single_threaded_decoders
    _single_threaded_decoders = True


def _plugin_order(syntax: UID) -> list[str]:
    """In one process, pydicom's own choice first (GDCM: multi-threaded, the fastest here);
    in worker processes the single-threaded plugins first; every installed plugin follows
    explicitly as a fallback."""
    if not syntax.is_compressed:
        return [""]
    available = list(get_decoder(syntax).available_plugins)
    preferred = [name for name in _PREFERRED_PLUGINS if name in available]
    ordered = [*preferred, *[name for name in available if name not in preferred]]
    return ordered if _single_threaded_decoders else ["", *ordered]


def _decode_failure(source: DicomFile, errors: list[str]) -> IngestError:
    syntax = source.transfer_syntax
    if not gdcm_available() and syntax == JPEGExtended12Bit and source.bits_stored > 8:
        return IngestError("JPEG Extended 12-bit needs python-gdcm")
    if not errors:
        return IngestError(f"no decoder installed for {syntax.name}")
    return IngestError(f"cannot decode {syntax.name} pixel data: " + "; ".join(errors))


def _decode_with_gdcm(source: DicomFile, index: int) -> np.ndarray:
    if source._gdcm_volume is None:
        if source.path is None:
            raise ValueError("GDCM needs the file on disk")
        source._gdcm_volume = decode_volume(
            source.path, source.rows, source.cols, source.frames, source.samples
        )
    return source._gdcm_volume[index]


def decode_pixels(source: DicomFile, index: int) -> np.ndarray:
    """The raw (stored) pixel array of frame `index`, colour converted to RGB."""
    errors: list[str] = []
    for plugin in _plugin_order(source.transfer_syntax):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                array = pixel_array(source.ds, index=index, decoding_plugin=plugin)
        except BaseException as exc:  # noqa: BLE001 - native decoders may panic
            reraise_interrupts(exc)
            errors.append(f"{plugin or 'pydicom'}: {_short(exc)}")
            continue
        if array.ndim == 3 and source.samples == 1:
            array = array[0]
        return array
    if source.transfer_syntax.is_compressed and gdcm_available():
        try:
            return _decode_with_gdcm(source, index)
        except BaseException as exc:  # noqa: BLE001 - native decoders may panic
            reraise_interrupts(exc)
            errors.append(f"python-gdcm: {_short(exc)}")
    raise _decode_failure(source, errors)


def _first(value: Any) -> Any:
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def _voi_lut_window(ds: Dataset) -> tuple[float, float] | None:
    """The input range over which the first VOI LUT ramps, as (center, width)."""
    try:
        item = ds.VOILUTSequence[0]
        entries, first, bits = (int(v) for v in item.LUTDescriptor)
        entries = entries or 65536
        raw = item.LUTData
        lut = (
            np.frombuffer(raw, dtype="<u2" if bits > 8 else np.uint8)
            if isinstance(raw, bytes)
            else np.asarray(raw, dtype=np.float64).ravel()
        )[:entries].astype(np.float64)
    except Exception:
        return None
    if lut.size < 2 or lut.max() == lut.min():
        return None
    low, high = lut.min(), lut.max()
    margin = (high - low) * 0.01
    rising = np.nonzero(lut > low + margin)[0]
    below_top = np.nonzero(lut < high - margin)[0]
    if rising.size == 0 or below_top.size == 0:
        return None
    start, end = first + int(rising[0]) - 1, first + int(below_top[-1]) + 1
    if end <= start:
        return None
    return (start + end) / 2.0, float(end - start)


def dicom_window(ds: Dataset) -> tuple[float, float] | None:
    """Default window from the VOI LUT, else the first Window Center/Width, else None."""
    if "VOILUTSequence" in ds:
        window = _voi_lut_window(ds)
        if window is not None:
            return window
    try:
        center = float(_first(ds.get("WindowCenter")))
        width = positive_float(_first(ds.get("WindowWidth")))
    except (TypeError, ValueError):
        return None
    if width is None or not math.isfinite(center):
        return None
    return center, width


def _spacing_pair(container: Dataset, keyword: str) -> tuple[float, float] | None:
    try:
        value = container.get(keyword)
        if value is None or len(value) != 2:
            return None
        pair = positive_float(value[0]), positive_float(value[1])
    except Exception:
        return None
    return (pair[0], pair[1]) if pair[0] and pair[1] else None


def dicom_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, Calibration, str]:
    """Pixel spacing (row, col) in mm with its calibration and the tag(s) it came from."""
    spacing = _spacing_pair(ds, "PixelSpacing")
    if spacing:
        return spacing, Calibration.CALIBRATED, "PixelSpacing"
    try:
        measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        spacing = _spacing_pair(measures, "PixelSpacing")
    except Exception:
        spacing = None
    if spacing:
        source = "SharedFunctionalGroupsSequence>PixelMeasuresSequence>PixelSpacing"
        return spacing, Calibration.CALIBRATED, source
    spacing = _spacing_pair(ds, "ImagerPixelSpacing")
    if spacing:
        try:
            factor = positive_float(ds.get("EstimatedRadiographicMagnificationFactor"))
        except Exception:
            factor = None
        if factor:
            corrected = (spacing[0] / factor, spacing[1] / factor)
            source = "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
            return corrected, Calibration.DETECTOR, source
        return spacing, Calibration.DETECTOR, "ImagerPixelSpacing"
    return None, Calibration.UNCALIBRATED, ""


def _stored_range(source: DicomFile) -> tuple[float, float]:
    """The range of modality values the stored bits can express (for MONOCHROME1 inversion)."""
    bits = source.bits_stored
    if int(source.ds.get("PixelRepresentation", 0) or 0) == 1:
        raw = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1])
    else:
        raw = np.array([0, 2**bits - 1])
    ends = np.asarray(apply_modality_lut(raw, source.ds), dtype=np.float64)
    return float(ends.min()), float(ends.max())


def decode_frame(source: DicomFile, index: int) -> Frame:
    """Frame `index` through the pipeline: modality LUT, default window, bone bright."""
    array = decode_pixels(source, index)
    spacing, calibration, spacing_source = dicom_spacing(source.ds)
    photometric = source.photometric
    rgb: np.ndarray | None = None
    if array.ndim == 3 or photometric in COLOUR_PHOTOMETRICS or photometric == "PALETTE COLOR":
        if photometric == "PALETTE COLOR" and array.ndim == 2:
            try:
                coloured = apply_color_lut(array, source.ds)
            except Exception as exc:
                raise IngestError(f"invalid palette colour lookup table: {_short(exc)}") from exc
            bits = 16 if coloured.dtype != np.uint8 and coloured.max() > 255 else 8
            rgb = to_rgb8(coloured, bits)
        elif array.ndim == 3:
            rgb = to_rgb8(array, source.bits_stored)
    window: tuple[float, float] | None  # (center, width)
    if rgb is not None:
        values = luminance(rgb)
        window = (127.5, 255.0)
    else:
        try:
            values = np.asarray(apply_modality_lut(array, source.ds), dtype=np.float32)
        except Exception as exc:
            raise IngestError(f"invalid modality LUT / rescale: {_short(exc)}") from exc
        window = dicom_window(source.ds)
        if photometric == "MONOCHROME1":
            if array.dtype.kind == "f":
                low, high = float(np.nanmin(values)), float(np.nanmax(values))
            else:
                low, high = _stored_range(source)
            values = np.float32(low + high) - values
            if window is not None:
                window = (low + high - window[0], window[1])
        if window is None:
            window = percentile_window(values)
    return Frame(
        values=values,
        rgb=rgb,
        window=(float(window[0]), float(window[1])),
        pixel_spacing=spacing,
        calibration=calibration,
        spacing_source=spacing_source,
        photometric=photometric,
        bits_stored=source.bits_stored,
        frames=source.frames,
    )


def decode_frames(source: DicomFile) -> Iterator[tuple[int, Frame]]:
    """Every frame of `source` through the pipeline, in order; when one frame of several
    fails, the IngestError names it."""
    for index in range(source.frames):
        try:
            frame = decode_frame(source, index)
        except IngestError as exc:
            if source.frames > 1:
                raise IngestError(f"frame {index}: {exc.reason}") from exc
            raise
        yield index, frame


def dicom_subjects(
    source: DicomFile, content_hash: str
) -> tuple[PatientInfo, StudyInfo, SeriesInfo]:
    """Patient, study and series of a DICOM file, values whole (`limits.fit_columns` fits
    them); missing UIDs are derived deterministically."""
    ds = source.ds
    sop = source.sop_instance_uid or deterministic_uid("sop", content_hash)
    patient = PatientInfo(
        patient_id=_text(ds, "PatientID") or "UNKNOWN",
        name=_text(ds, "PatientName"),
        birth_date=parse_date(_text(ds, "PatientBirthDate")),
        sex=_text(ds, "PatientSex"),
    )
    study = StudyInfo(
        study_uid=_text(ds, "StudyInstanceUID") or deterministic_uid("study", sop),
        study_date=parse_date(_text(ds, "StudyDate")),
        accession_number=_text(ds, "AccessionNumber"),
        description=_text(ds, "StudyDescription"),
    )
    series = SeriesInfo(
        series_uid=_text(ds, "SeriesInstanceUID") or deterministic_uid("series", sop),
        modality=_text(ds, "Modality"),
        series_number=optional_int(_text(ds, "SeriesNumber")),
        description=_text(ds, "SeriesDescription"),
    )
    return patient, study, series


def image_attributes(ds: Dataset) -> dict[str, str]:
    """Body part, view and laterality as stored (ImageLaterality before Laterality), whole."""
    return {
        "body_part": _text(ds, "BodyPartExamined"),
        "view": _text(ds, "ViewPosition"),
        "laterality": _text(ds, "ImageLaterality") or _text(ds, "Laterality"),
    }


def _text(ds: Dataset, keyword: str) -> str:
    """A header value as one line of text, whole; unreadable values (bad VR) count as absent."""
    try:
        return clean(ds.get(keyword, ""))
    except Exception:
        return ""


def _short(exc: BaseException, length: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:length]
