"""The boundary types other layers program against: what an analysis service and its runtime
offer. `ErrorMapService` / `MaeRuntime` (`inference.service`) implement them; tests and a future
remote service can stand in with anything of the same shape.

`ModelManifest` is what the rest of the core reads of a model package's manifest
(`package.Manifest` implements it); `AnalysisResult` what it reads of an analysed image
(`service.ErrorMapResult`). This module imports no implementation, so the implementations can
name these types in their own signatures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from skelex_desktop.core.inference.hotspots import Hotspot
from skelex_desktop.core.inference.preprocess import Preprocessing


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of a package: its main file, all its files, inputs and outputs."""

    name: str
    file: str
    files: tuple[str, ...]
    inputs: dict[str, Any]
    outputs: dict[str, Any]


class ServiceSettings(Protocol):
    """The settings an analysis service reads."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def active_model(self) -> str: ...

    @property
    def inference_threads(self) -> int: ...


class ModelManifest(Protocol):
    """A model package's manifest as the rest of the core reads it: identity, the preprocessing
    of the model input, the error-map settings, the listed files and graphs."""

    @property
    def data(self) -> Mapping[str, Any]:
        """The parsed `manifest.json` (JSON; read it, never change it)."""
        ...

    @property
    def folder(self) -> Path: ...

    @property
    def sha256(self) -> str:
        """The package's identity: the sha256 of its `manifest.json`."""
        ...

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def preprocessing(self) -> Preprocessing: ...

    @property
    def errormap(self) -> Mapping[str, Any]:
        """The `errormap` section: thresholds, low-pass, structure table, calibration record."""
        ...

    @property
    def files(self) -> Mapping[str, Mapping[str, Any]]:
        """Every file of the package by name, with its `sha256` and `bytes`."""
        ...

    @property
    def manifest_shas(self) -> tuple[str, ...]:
        """This manifest's sha256 and those it superseded with the same embeddings."""
        ...

    @property
    def embedding_identity(self) -> str:
        """The identity of the package's embeddings (`package.embedding_identity`)."""
        ...

    def graph(self, name: str) -> GraphSpec: ...


class AnalysisResult(Protocol):
    """An analysed image: full-resolution error map, hotspots, score and the zero-shot call."""

    @property
    def error_map(self) -> np.ndarray: ...

    @property
    def hotspots(self) -> Sequence[Hotspot]: ...

    @property
    def score(self) -> float: ...

    @property
    def abnormal(self) -> bool | None: ...

    @property
    def threshold(self) -> float | None: ...

    @property
    def model(self) -> str: ...

    @property
    def model_sha256(self) -> str: ...

    @property
    def mode(self) -> str: ...

    @property
    def passes(self) -> int: ...

    @property
    def cached(self) -> bool: ...

    @property
    def extra(self) -> Mapping[str, Any]:
        """What else the runtime recorded (e.g. `display_max`, `cache_path`)."""
        ...

    def summary(self) -> dict[str, Any]: ...


class ModelRuntime(Protocol):
    """A verified model package's sessions: embeddings and error maps of model inputs."""

    @property
    def manifest(self) -> ModelManifest: ...

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
    ) -> AnalysisResult: ...
