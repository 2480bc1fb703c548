"""What the GUI and the CLI call: error map + hotspots + anomaly score for an image.

`ErrorMapService(settings).analyse_file(path)` reads the file through the pixel pipeline,
checks the prediction cache, runs all passes in one batched onnxruntime call on a miss, and
returns an `ErrorMapResult` whose map and boxes are in full-resolution pixel coordinates.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skelex_desktop.core.inference.cache import PredictionCache, cache_key
from skelex_desktop.core.inference.errormap import (
    FOREGROUND_VERSION,
    ErrorMap,
    declared_pooling,
    declared_shifts,
    foreground_mask,
    noise_for,
    pack_anatomy,
    shift_image,
    shift_of_passes,
)
from skelex_desktop.core.inference.hotspots import (
    DEFAULT_Z,
    SCORE_PERCENTILE,
    Hotspot,
    anomaly_score,
    find_hotspots,
    scale_hotspots,
)
from skelex_desktop.core.inference.interfaces import ServiceSettings
from skelex_desktop.core.inference.normalisation import (
    combine_passes,
    declared_lowpass,
    declared_normaliser,
)
from skelex_desktop.core.inference.package import (
    Manifest,
    PackageError,
    sha256_bytes,
    verify_file,
)
from skelex_desktop.core.inference.preprocess import normalise, to_model_u8
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.inference.session import SharedWeights, open_graph

if TYPE_CHECKING:  # onnxruntime ships no type information: Any to mypy
    from onnxruntime import InferenceSession

DISPLAY_PERCENTILE = 99.5


@dataclass
class ErrorMapResult:
    """An analysed image: full-resolution error map, hotspots, score and the zero-shot call."""

    error_map: np.ndarray
    hotspots: list[Hotspot]
    score: float
    abnormal: bool | None
    threshold: float | None
    model: str
    model_sha256: str
    mode: str
    passes: int
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (everything but the map itself)."""
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "mode": self.mode,
            "passes": self.passes,
            "shape": list(self.error_map.shape),
            "score": self.score,
            "abnormal": self.abnormal,
            "abnormal_threshold": self.threshold,
            "hotspots": [h.to_json() for h in self.hotspots],
            **self.extra,
        }

    @classmethod
    def from_cache(cls, error_map: np.ndarray, s: dict[str, Any]) -> ErrorMapResult:
        spots = [Hotspot(**h) for h in s["hotspots"]]
        known = {
            "model",
            "model_sha256",
            "mode",
            "passes",
            "shape",
            "score",
            "abnormal",
            "abnormal_threshold",
            "hotspots",
        }
        return cls(
            error_map,
            spots,
            s["score"],
            s["abnormal"],
            s["abnormal_threshold"],
            s["model"],
            s["model_sha256"],
            s["mode"],
            s["passes"],
            True,
            {k: v for k, v in s.items() if k not in known},
        )


class MaeRuntime:
    """The onnxruntime sessions of one trusted package, and the error-map algorithm.

    Construction opens the map graph's session (its files checked against the manifest as
    they are read, and the session built from those bytes), then checks every other file this
    runtime may use (the embedding graph's, the model card, heads, ...), so a damaged package
    fails here and nothing is half-loaded. Files only the other map graph reads (the int8
    copies for an fp32 runtime: 0.33 GB of hashing at ViT-L size, issue #20) are left to the
    runtime that opens them and to `model verify`. The embedding graph's session opens on first
    use, again from bytes checked as they are read. The graphs of a format-2 package take their
    weights from one verified buffer (`SharedWeights`), so `weights.bin` is read and hashed
    once.
    """

    def __init__(self, manifest: Manifest, threads: int = 1, int8: bool = False) -> None:
        self.manifest = manifest
        self.threads = threads
        self.graph = "reconstruction_int8" if int8 else "reconstruction"
        if not manifest.has_graph(self.graph):
            raise PackageError(f"package {manifest.name} has no {self.graph} graph")
        self._sessions: dict[str, InferenceSession] = {}
        self._lock = threading.Lock()
        self.weights = SharedWeights.verified(manifest)
        self.session_runs = 0
        cfg = manifest.data["architecture"]["config"]
        self.grid = int(cfg["image_size"]) // manifest.patch_size
        # the structure table the manifest declares (None: plain maps), parsed once
        self.normaliser = declared_normaliser(manifest.errormap)
        self._session(self.graph)
        opened = set(manifest.graph(self.graph).files)
        for name in manifest.files:
            if name not in opened and name not in self._unused_files():
                verify_file(manifest, name)

    def _unused_files(self) -> set[str]:
        """Files that only graphs this runtime never opens read (the other map graph)."""
        graphs = self.manifest.data.get("graphs") or {}
        used = {self.graph, "embedding"}
        mine = {f for g in used if g in graphs for f in self.manifest.graph(g).files}
        theirs = {f for g in graphs if g not in used for f in self.manifest.graph(g).files}
        return theirs - mine

    def _session(self, graph: str) -> InferenceSession:
        with self._lock:
            if graph not in self._sessions:
                self._sessions[graph] = open_graph(self.manifest, graph, self.threads, self.weights)
            return self._sessions[graph]

    def reconstruct(
        self, pixel_values: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One batched call: ([B, L, P*P*C] reconstruction, [B, L] mask)."""
        session = self._session(self.graph)
        self.session_runs += 1
        rec, mask = session.run(
            ["reconstruction", "mask"],
            {
                "pixel_values": np.ascontiguousarray(pixel_values, np.float32),
                "noise": np.ascontiguousarray(noise, np.float32),
            },
        )
        return rec, mask

    def embed(self, pixel_values: np.ndarray) -> np.ndarray:
        """[B, D] embeddings of unmasked images."""
        session = self._session("embedding")
        self.session_runs += 1
        (out,) = session.run(
            ["embedding"], {"pixel_values": np.ascontiguousarray(pixel_values, np.float32)}
        )
        return out

    def error_map(
        self,
        pixels: np.ndarray,
        mode: str = "complementary",
        passes: int | None = None,
        errormap: dict[str, Any] | None = None,
    ) -> ErrorMap:
        """The model-space error map of decoded pixels (gray [H, W] or RGB [H, W, 3]).

        Complementary mode blends the passes' reconstructions and takes the error of the blend
        unless the manifest declares `errormap.pooling: "error"` (the plain complementary map:
        each pass's masked error, pooled); reference mode pools errors, as the reference
        (`errormap.declared_pooling`). When the manifest declares `errormap.lowpass_sigma`,
        input and reconstructions are Gaussian-blurred by that many model pixels before
        differencing; when it declares a valid `errormap.normalisation` table, the error is
        then divided by the table's expected normal error of each pixel's structure bin
        (`normalisation.py`). When it declares `errormap.shifts`, the complementary passes are
        split over copies of the input shifted by those offsets and moved back (blended with
        per-patch Hann windows); by default nothing is shifted. `errormap` replaces the
        manifest's settings (benches).
        """
        prep = self.manifest.preprocessing
        rgb, geometry = to_model_u8(pixels, prep)
        x = normalise(rgb, prep)
        settings = self.manifest.errormap if errormap is None else errormap
        if passes is None:
            passes = int(
                settings.get("passes", 4)
                if mode == "complementary"
                else settings.get("reference_passes", 10)
            )
        noise = noise_for(
            mode,
            self.grid,
            self.manifest.mask_ratio,
            passes,
            int(settings.get("reference_seed", 0)),
        )
        patch = self.manifest.patch_size
        pass_shifts = shift_of_passes(noise.shape[0], declared_shifts(settings, mode, patch))
        batch = np.stack([shift_image(x, s) for s in pass_shifts])
        rec, mask = self.reconstruct(batch, noise)
        error, counts = combine_passes(
            x,
            rec,
            mask,
            pass_shifts,
            patch,
            prep,
            declared_lowpass(settings),
            declared_pooling(settings, mode),
        )
        if self.normaliser is not None:
            error = self.normaliser.apply(error, rgb[..., 0])
        return ErrorMap(
            error, counts, foreground_mask(rgb, geometry), geometry, mode, noise.shape[0]
        )

    def analyse(self, pixels: np.ndarray, mode: str = "complementary") -> ErrorMapResult:
        """Error map at full resolution, hotspots and anomaly score of decoded pixels."""
        emap = self.error_map(pixels, mode)
        settings = self.manifest.errormap
        threshold = settings.get("hotspot_threshold")
        spots = find_hotspots(
            emap.model_map,
            emap.foreground,
            z_threshold=float(settings.get("hotspot_z", DEFAULT_Z)),
            threshold=float(threshold) if threshold is not None else None,
        )
        spots = scale_hotspots(spots, emap.geometry.to_source, emap.geometry.source_shape)
        score = anomaly_score(
            emap.model_map,
            emap.foreground,
            float(settings.get("score_percentile", SCORE_PERCENTILE)),
        )
        cut = settings.get("abnormal_threshold")
        inside = emap.model_map[emap.foreground] if emap.foreground.any() else emap.model_map
        return ErrorMapResult(
            emap.full_resolution(),
            spots,
            score,
            None if cut is None else bool(score > float(cut)),
            None if cut is None else float(cut),
            self.manifest.name,
            self.manifest.sha256,
            mode,
            emap.passes,
            # for displays: the colour scale of the anatomy's error (not the collimation
            # border's), and the anatomy itself, where hotspots and the score come from
            extra={
                "display_max": float(np.percentile(inside, DISPLAY_PERCENTILE)),
                "anatomy": pack_anatomy(emap.foreground, emap.geometry),
            },
        )


class ErrorMapService:
    """Error maps for image files with a prediction cache; holds the sessions between calls."""

    def __init__(
        self,
        settings: ServiceSettings,
        model: str | None = None,
        int8: bool = False,
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        self.model = model or settings.active_model
        self.int8 = int8
        self.registry = registry or Registry.from_settings(settings)
        self.cache = PredictionCache.for_data_dir(Path(settings.data_dir))
        self._runtime: MaeRuntime | None = None

    @property
    def runtime(self) -> MaeRuntime:
        """The trusted package's sessions (loaded on first use; each file is checked against
        the manifest as the session that uses it is built, from the bytes it is built from)."""
        if self._runtime is None:
            manifest = self.registry.read(self.model)
            self._runtime = MaeRuntime(manifest, int(self.settings.inference_threads), self.int8)
        return self._runtime

    def analyse_pixels(self, pixels: np.ndarray, mode: str = "complementary") -> ErrorMapResult:
        return self.runtime.analyse(pixels, mode)

    def analyse_file(
        self,
        path: Path,
        frame: int = 0,
        mode: str = "complementary",
        use_cache: bool = True,
        content_hash: str | None = None,
    ) -> ErrorMapResult:
        """Error map, hotspots and score of a DICOM or raster file (full resolution).

        `content_hash`: the sha256 of the file's bytes when already known (the database's
        `content_hash` of an imported image); computed here otherwise.
        """
        from skelex_desktop.core.ingest.pixels import read_file, read_frame

        runtime = self.runtime
        # read_file raises IngestError with a readable reason (missing, unreadable, empty)
        image_hash = content_hash or sha256_bytes(read_file(Path(path)))
        key = cache_key(
            image_hash,
            runtime.manifest.sha256,
            frame=frame,
            mode=mode,
            graph=runtime.graph,
            foreground=FOREGROUND_VERSION,
        )
        if use_cache and (hit := self.cache.get(key)) is not None:
            return self._with_cache_path(ErrorMapResult.from_cache(*hit), key)
        decoded = read_frame(Path(path), frame)
        pixels = decoded.model_pixels
        result = runtime.analyse(pixels, mode)
        if use_cache:
            self.cache.put(key, result.error_map, result.summary())
            self._with_cache_path(result, key)
        return result

    def _with_cache_path(self, result: ErrorMapResult, key: str) -> ErrorMapResult:
        """Note where the cached map is (relative to the data dir when inside it), so the
        stored prediction can name it and exports find it (the DICOM Parametric Map)."""
        path = self.cache.map_path(key)
        data_dir = Path(self.settings.data_dir)
        result.extra["cache_path"] = str(
            path.relative_to(data_dir) if path.is_relative_to(data_dir) else path
        )
        return result


_services: dict[tuple[str, str, bool], ErrorMapService] = {}
_services_lock = threading.Lock()


def analyse_file(
    path: Path,
    settings: ServiceSettings,
    model: str | None = None,
    mode: str = "complementary",
    frame: int = 0,
    int8: bool = False,
) -> ErrorMapResult:
    """Convenience for one-off calls: a per-process service per (data dir, model)."""
    name = model or settings.active_model
    key = (str(settings.data_dir), name, int8)
    with _services_lock:
        service = _services.get(key)
        if service is None:
            service = _services[key] = ErrorMapService(settings, name, int8)
    return service.analyse_file(path, frame, mode)
