"""Where the application's data files live (label schema, stylesheet, bundled models)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def installation_root() -> Path:
    """The folder holding `models/` and `resources/`: the bundle's data folder when frozen
    (PyInstaller sets `sys._MEIPASS`), else the source checkout."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle)
    return Path(__file__).resolve().parents[2]


PROJECT_ROOT = installation_root()


def resources_dir() -> Path:
    """`resources/` of the installation (override with SKELEX_RESOURCES)."""
    return Path(os.environ.get("SKELEX_RESOURCES", PROJECT_ROOT / "resources"))


def bundled_models_dir() -> Path:
    """`models/` with the model packages shipped with the application."""
    return Path(os.environ.get("SKELEX_BUNDLED_MODELS", PROJECT_ROOT / "models"))
