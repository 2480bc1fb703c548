"""Which edition runs: the full edition has torch (training); the reader edition does not."""

from __future__ import annotations

import importlib.util

# What training, fine-tuning, pretraining and checkpoint import need beyond the reader edition.
FULL_EDITION_MODULES = ("torch", "sklearn", "matplotlib")


def missing_full_edition_modules() -> list[str]:
    """The training libraries this installation lacks (empty in the full edition)."""
    missing = []
    for name in FULL_EDITION_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a blocked or half-installed module
            found = False
        if not found:
            missing.append(name)
    return missing


def is_full_edition() -> bool:
    return not missing_full_edition_modules()


def needs_full_edition(what: str) -> str:
    """The plain message for a feature the reader edition does not have."""
    return (
        f"{what} needs the full edition of SKELEX Desktop (with torch); this is the reader "
        "edition (review, analysis, calibration, export). Install the full edition package "
        "(skelex-desktop-full) to train."
    )
