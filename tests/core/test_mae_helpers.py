"""Shared builders for the runtime tests: a tiny MAE and its model package (built once)."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

TINY = dict(
    image_size=64,
    patch_size=16,
    num_channels=3,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    decoder_hidden_size=32,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=64,
)


def tiny_model(seed: int = 0):  # noqa: ANN201 - torch is imported lazily
    import torch

    from skelex_desktop.core.training.mae import MaskedAutoencoder
    from skelex_desktop.core.training.mae_config import MaeConfig

    model = MaskedAutoencoder(MaeConfig(**TINY))
    model.init_weights(torch.Generator().manual_seed(seed))
    return model.eval()


@functools.lru_cache(maxsize=1)
def tiny_package_root() -> Path:
    """A models dir holding package 'tiny' (fp32 + int8), built once per test session."""
    from skelex_desktop.core.training.package_writer import ImportOptions, import_model

    root = Path(tempfile.mkdtemp(prefix="skelex-test-models-"))
    import_model(tiny_model(), root, ImportOptions(name="tiny", int8=True))
    return root


def copy_tiny_package(models_dir: Path) -> Path:
    """A private copy of the tiny package under `models_dir` (safe to damage).

    When `models_dir` is a data dir's `models` folder, the copy stands for the user's own
    import into that data dir: its manifest is recorded in the data dir's trust store, as
    `model import` records what it writes (the package itself was written by `import_model`).
    Anywhere else (a bundled folder, a bare folder) nothing is recorded.
    """
    from skelex_desktop.core.inference.trust import IMPORTED, TrustStore

    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / "tiny"
    shutil.copytree(tiny_package_root() / "tiny", target)
    if models_dir.name == "models":
        TrustStore.for_data_dir(models_dir.parent).record_file(target, IMPORTED)
    return target


def write_png(path: Path, rows: int = 90, cols: int = 130, seed: int = 0) -> Path:
    """A 16-bit gray PNG with smooth structure and a bright blob."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    img = 2000 + 800 * np.sin(x / 9.0) * np.cos(y / 13.0) + rng.normal(0, 30, (rows, cols))
    img[(y - rows // 3) ** 2 + (x - cols // 2) ** 2 < 64] += 2500
    cv2.imwrite(str(path), np.clip(img, 0, 65535).astype(np.uint16))
    return path
