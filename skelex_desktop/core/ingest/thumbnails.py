"""Thumbnails: at most 256 px, PNG, at the default window (bone bright), written atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from skelex_desktop.core.ingest.frame import Frame, apply_window
from skelex_desktop.core.ingest.limits import THUMBNAIL_PX

THUMBNAILS_DIR = "thumbnails"


def thumbnail_path(thumbnails_dir: Path, sop_instance_uid: str, frame: int) -> Path:
    """Where the thumbnail of (SOP Instance UID, frame) lives: content-addressed, sharded."""
    key = hashlib.sha1(f"{sop_instance_uid}#{frame}".encode()).hexdigest()
    return thumbnails_dir / key[:2] / f"{key}.png"


def render_thumbnail(frame: Frame, size: int = THUMBNAIL_PX) -> np.ndarray:
    """The frame as uint8 (grey, or BGR for colour), longest side at most `size`."""
    image = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR) if frame.rgb is not None else frame.values
    rows, cols = image.shape[:2]
    scale = size / max(rows, cols)
    if scale < 1.0:  # shrink first, window after: the same picture for a fraction of the work
        target = (max(1, round(cols * scale)), max(1, round(rows * scale)))
        if image.dtype.kind == "f" and not np.isfinite(image.sum()):  # NaN/inf spread in resize
            image = np.nan_to_num(image)
        image = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
    if frame.rgb is not None:
        return image
    return (apply_window(image, *frame.window) * 255.0 + 0.5).astype(np.uint8)


def write_thumbnail(frame: Frame, dest: Path) -> Path:
    """Render and write the thumbnail to `dest` atomically (temporary file, then rename)."""
    ok, encoded = cv2.imencode(".png", render_thumbnail(frame))
    if not ok:
        raise OSError("PNG encoding of the thumbnail failed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded.tobytes())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
