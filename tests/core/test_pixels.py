"""The pixel pipeline: modality LUT, default window, MONOCHROME1, colour, raster files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from skelex_desktop.core.ingest.limits import IngestError
from skelex_desktop.core.ingest.pixels import read_frame
from skelex_desktop.core.ingest.thumbnails import render_thumbnail, thumbnail_path, write_thumbnail
from tests.core.test_ingest_helpers import bone_phantom, make_dicom, write_raster


def test_rescale_and_first_of_several_windows(tmp_path: Path) -> None:
    path = make_dicom(
        tmp_path / "a.dcm",
        RescaleSlope=2,
        RescaleIntercept=-100,
        WindowCenter=[300, 900],
        WindowWidth=[400, 100],
    )
    frame = read_frame(path)
    raw = bone_phantom().astype(np.float32)
    assert np.array_equal(frame.values, raw * 2 - 100)
    assert frame.window == (300.0, 400.0)
    assert frame.gray.min() >= 0 and frame.gray.max() <= 1


def test_percentile_window_when_none_is_given(tmp_path: Path) -> None:
    frame = read_frame(make_dicom(tmp_path / "a.dcm"))
    low, high = np.percentile(frame.values, [0.5, 99.5])
    assert frame.window == pytest.approx(((low + high) / 2, high - low))


def test_monochrome1_makes_bone_bright(tmp_path: Path) -> None:
    phantom = bone_phantom()
    inverted = (4095 - phantom).astype(np.uint16)  # as a MONOCHROME1 detector stores it
    frame = read_frame(
        make_dicom(
            tmp_path / "m1.dcm",
            pixels=inverted,
            PhotometricInterpretation="MONOCHROME1",
            WindowCenter=4095 - 2000,
            WindowWidth=4000,
        )
    )
    rows, cols = phantom.shape
    bone = frame.gray[rows // 2, cols // 2]
    background = frame.gray[1, 1]
    assert bone > background
    assert frame.window == (2000.0, 4000.0)


def test_voi_lut_sequence_gives_the_window(tmp_path: Path) -> None:
    item = Dataset()
    item.LUTDescriptor = [1024, 1000, 16]
    ramp = list(range(0, 65535, 80))  # 820 steps, entries 100..919 of the table
    item.LUTData = [0] * 100 + ramp + [65535] * (1024 - 100 - len(ramp))
    item["LUTData"].VR = "US"
    frame = read_frame(make_dicom(tmp_path / "voi.dcm", VOILUTSequence=[item]))
    center, width = frame.window
    # the window spans the ramp, less its flat 1 % ends
    assert 1000 + 95 <= center - width / 2 <= 1000 + 112
    assert 1000 + 905 <= center + width / 2 <= 1000 + 925


def test_colour_dicom_keeps_rgb() -> None:
    frame = read_frame(Path(get_testdata_file("SC_rgb.dcm")))
    assert frame.rgb is not None and frame.rgb.dtype == np.uint8 and frame.rgb.shape[2] == 3
    assert frame.values.shape == frame.rgb.shape[:2]
    assert render_thumbnail(frame).shape[2] == 3


def test_multiframe_frame_index(tmp_path: Path) -> None:
    frames = np.stack([np.full((8, 8), v, np.uint16) for v in (5, 50)])
    path = make_dicom(tmp_path / "mf.dcm", pixels=frames)
    assert read_frame(path, 1).values[0, 0] == 50
    with pytest.raises(IngestError, match="out of range"):
        read_frame(path, 2)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_raster_grey_and_sidecar_spacing(tmp_path: Path, dtype: type) -> None:
    image = (np.arange(600).reshape(20, 30) % 250).astype(dtype)
    path = write_raster(tmp_path / "x.tif", image)
    (tmp_path / "skelex_sidecar.csv").write_text("file,pixel_spacing_mm\nx.tif,0.143\n")
    frame = read_frame(path)
    assert np.array_equal(frame.values, image.astype(np.float32))
    assert frame.pixel_spacing == (0.143, 0.143) and frame.calibration == "calibrated"
    assert frame.bits_stored == 8 * np.dtype(dtype).itemsize


def test_thumbnail_is_small_and_bone_bright(tmp_path: Path) -> None:
    big = np.zeros((1000, 600), np.uint16)
    big[300:700, 200:400] = 4000
    frame = read_frame(make_dicom(tmp_path / "big.dcm", pixels=big))
    thumb = render_thumbnail(frame)
    assert max(thumb.shape) == 256 and thumb.dtype == np.uint8
    assert thumb[128, 77] > thumb[5, 5]


def test_thumbnail_file_is_a_small_jpeg_at_a_content_addressed_path(tmp_path: Path) -> None:
    big = np.zeros((1000, 600), np.uint16)
    big[300:700, 200:400] = 4000
    frame = read_frame(make_dicom(tmp_path / "big.dcm", pixels=big))
    dest = thumbnail_path(tmp_path / "thumbnails", "1.2.3", 0)
    assert dest == thumbnail_path(tmp_path / "thumbnails", "1.2.3", 0) and dest.suffix == ".jpg"
    assert thumbnail_path(tmp_path / "thumbnails", "1.2.3", 1) != dest
    write_thumbnail(frame, dest)
    assert dest.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temporary file left
    back = cv2.imread(str(dest), cv2.IMREAD_UNCHANGED)
    assert back.shape == (256, 154) and back.dtype == np.uint8
    assert int(back[128, 77]) > int(back[5, 5]) + 100  # bone bright after JPEG
    assert np.abs(back.astype(int) - render_thumbnail(frame).astype(int)).mean() < 3
