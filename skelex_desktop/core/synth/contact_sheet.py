"""A contact sheet of generated radiographs, windowed for display, with a caption per tile."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .image import SynthImage, generate_image

# (region, finding) pairs that show every region and every finding type on one sheet
DEMO_TILES: tuple[tuple[str, str | None], ...] = (
    ("hand", None),
    ("hand", "fracture"),
    ("wrist", "fracture"),
    ("hand", "benign_lesion"),
    ("forearm", None),
    ("forearm", "implant"),
    ("forearm", "lytic_lesion"),
    ("wrist", None),
    ("knee", None),
    ("knee", "osteoarthritis"),
    ("knee", "lytic_lesion"),
    ("knee", "fracture"),
    ("ankle", None),
    ("ankle", "fracture"),
    ("foot", None),
    ("foot", "implant"),
)


def display_u8(img: SynthImage) -> np.ndarray:
    """8-bit display image (bone bright) using the image's own window."""
    mono2 = img.monochrome2().astype(np.float32)
    wc = img.meta["window_center"]
    if img.meta["photometric"] == "MONOCHROME1":
        wc = 2 ** img.meta["bits_stored"] - 1 - wc
    ww = img.meta["window_width"]
    out = (mono2 - (wc - ww / 2)) / ww * 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def caption(img: SynthImage) -> str:
    m, lab = img.meta, img.labels
    parts = [f"{m['region']} {m['view']} {m['laterality']}"]
    for f in img.findings:
        parts.append(f"{f.type.replace('_lesion', '')}:{f.detail or f.severity}")
    if lab["kl_grade"] is not None and not img.findings:
        parts.append(f"KL{lab['kl_grade']}")
    return "  ".join(parts)


def tile(img: SynthImage, px: int, outline: bool = True) -> np.ndarray:
    """One captioned colour tile; findings are outlined in colour when `outline`."""
    gray = cv2.resize(display_u8(img), (px, px), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if outline:
        scale = px / img.pixels.shape[0]
        for f in img.findings:
            x0, y0, x1, y1 = (int(round(v * scale)) for v in f.box)
            cv2.rectangle(rgb, (x0 - 3, y0 - 3), (x1 + 3, y1 + 3), (0, 200, 255), 1)
    cv2.rectangle(rgb, (0, px - 18), (px, px), (0, 0, 0), -1)
    cv2.putText(
        rgb,
        caption(img)[:60],
        (4, px - 5),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.36,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return rgb


def contact_sheet(
    path: Path, seed: int = 0, size: int = 768, tile_px: int = 384, cols: int = 4
) -> Path:
    """Write a 4x4 sheet of demo images (all regions and finding types) to `path` (PNG)."""
    tiles = []
    for k, (region, finding) in enumerate(DEMO_TILES):
        img = generate_image(
            seed, k, size=size, region=region, finding=finding, abnormal=finding is not None
        )
        tiles.append(tile(img, tile_px))
    rows = [np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(len(tiles) // cols)]
    sheet = np.vstack(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)
    return path
