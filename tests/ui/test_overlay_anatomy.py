"""The error-map overlay is drawn where hotspots and the score come from: the exposed anatomy,
not the collimator blades or the image border (pydicom-data's RG3, a leg between two blades)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom.data

from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.settings import Settings
from skelex_desktop.ui.viewer.rendering import overlay_rgba, overlay_source


def test_the_overlay_leaves_the_collimator_blades_clear(tmp_path: Path) -> None:
    source = Path(pydicom.data.get_testdata_file("RG3_UNCR.dcm"))
    service = ErrorMapService(Settings(data_dir=tmp_path / "data"))
    fresh = service.analyse_file(source)
    cached = service.analyse_file(source)  # from the prediction cache this time
    assert cached.extra["anatomy"] == fresh.extra["anatomy"]  # kept with the cached map

    plain = overlay_source(fresh.error_map, fresh.extra["display_max"])
    masked = overlay_source(fresh.error_map, fresh.extra["display_max"], fresh.extra["anatomy"])
    cols = masked.values.shape[1]
    blades = np.r_[0 : cols // 20, cols - cols // 20 : cols]  # RG3's blades: left and right
    assert plain.values[:, blades].max() > 0  # the map has values on the blades ...
    assert not masked.values[:, blades].any()  # ... which the overlay no longer shows
    centre = masked.values[:, cols // 3 : 2 * cols // 3]
    assert np.count_nonzero(centre) > 0.3 * centre.size  # the leg keeps its map
    rgba = overlay_rgba(masked.values, "hot", 0.55, 0.0, masked.scale)
    assert not rgba[:, blades, 3].any()  # fully transparent there
