"""Where the application's data files live (label schema, stylesheet, bundled models)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resources_dir() -> Path:
    """`resources/` of the installation (override with SKELEX_RESOURCES)."""
    return Path(os.environ.get("SKELEX_RESOURCES", PROJECT_ROOT / "resources"))


def bundled_models_dir() -> Path:
    """`models/` with the model packages shipped with the application."""
    return Path(os.environ.get("SKELEX_BUNDLED_MODELS", PROJECT_ROOT / "models"))
