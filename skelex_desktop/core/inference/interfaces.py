"""The boundary types other layers program against: what an analysis service and its runtime
offer. `ErrorMapService` / `MaeRuntime` (`inference.service`) implement them; tests and a future
remote service can stand in with anything of the same shape."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from skelex_desktop.core.inference.package import Manifest
    from skelex_desktop.core.inference.service import ErrorMapResult


class ServiceSettings(Protocol):
    """The settings an analysis service reads."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def active_model(self) -> str: ...

    @property
    def inference_threads(self) -> int: ...


class ModelRuntime(Protocol):
    """A verified model package's sessions: embeddings and error maps of model inputs."""

    @property
    def manifest(self) -> Manifest: ...

    def embed(self, pixel_values: np.ndarray) -> np.ndarray: ...


class AnalysisService(Protocol):
    """Error maps of image files (cached) with the runtime that made them."""

    @property
    def settings(self) -> ServiceSettings: ...

    @property
    def runtime(self) -> ModelRuntime: ...

    def analyse_file(
        self,
        path: Path,
        frame: int = 0,
        mode: str = "complementary",
        use_cache: bool = True,
        content_hash: str | None = None,
    ) -> ErrorMapResult: ...
