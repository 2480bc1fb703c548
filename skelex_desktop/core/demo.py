"""Demo studies: synthetic radiographs created in the data dir and imported, for a first launch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from skelex_desktop.core.progress import Progress
from skelex_desktop.core.workspace import Workspace

if TYPE_CHECKING:  # the ingest package is imported when the demo is made
    from skelex_desktop.core.ingest.report import ImportReport

DEMO_IMAGES = 60  # about 40 studies with one to three images per study
DEMO_SEED = 20261128
DEMO_SIZE = 1024


def demo_dir(workspace: Workspace) -> Path:
    return workspace.settings.data_dir / "demo-studies"


def create_demo_studies(workspace: Workspace, progress: Progress | None = None) -> ImportReport:
    """Generate the demo set once (deterministic seed) and import it; returns the ImportReport.

    Running it again regenerates nothing that exists and imports nothing twice.
    """
    from skelex_desktop.core.ingest import ImportOptions, import_paths
    from skelex_desktop.core.synth import SynthConfig, generate_dataset

    out = demo_dir(workspace)
    marker = out / "ground_truth.csv"
    if not marker.exists():
        if progress is not None:
            progress.set_status("generating demo radiographs")
        config = SynthConfig(
            n=DEMO_IMAGES, seed=DEMO_SEED, abnormal_fraction=0.5, fmt="dicom", size=DEMO_SIZE
        )
        generate_dataset(out, config, progress)
    if progress is not None:
        progress.set_status("importing demo studies")
    options = ImportOptions(data_dir=workspace.settings.data_dir, reader=workspace.settings.reader)
    # patient folders only: the ground truth (CSV, JSON, masks/) stays out of the worklist
    patients = sorted(p for p in out.iterdir() if p.is_dir() and p.name != "masks")
    return import_paths(workspace.db, patients, options, progress)
