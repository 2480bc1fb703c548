"""`model import`: a HF ViTMAE folder -> a verified model package, written atomically.

The package is built in a hidden temporary folder next to the target (same file system), its
graphs are checked against torch, optional int8 copies are measured, thresholds are optionally
calibrated on SynthMSK, the final manifest's digest is recorded in the given trust store (the
application wrote it, so it loads without a manual step), and only then is the folder renamed
into place.

Memory (issue #20): the graphs are exported one at a time; once they match torch, the torch
model is dropped when this module owns it (`import_checkpoint`), and everything after works
from the files: the int8 copies are written from `weights.bin` one tensor at a time, and
hashes are taken by streaming the files.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skelex_desktop import __version__
from skelex_desktop.core.inference.hotspots import DEFAULT_Z, SCORE_PERCENTILE
from skelex_desktop.core.inference.package import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PackageError,
    check_package_name,
    read_manifest,
    sha256_file,
    write_manifest,
)
from skelex_desktop.core.inference.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from skelex_desktop.core.inference.trust import IMPORTED, TrustStore
from skelex_desktop.core.progress import Progress, check
from skelex_desktop.core.training.checkpoint import (
    PYTORCH_BIN,
    SAFETENSORS,
    SAFETENSORS_INDEX,
    load_checkpoint,
)
from skelex_desktop.core.training.mae import MaskedAutoencoder
from skelex_desktop.core.training.mae_config import MaeConfig
from skelex_desktop.core.training.onnx_export import (
    EMBEDDING_INPUTS,
    OPSET,
    check_parity,
    export_graphs,
    quantise_graphs,
)

PARITY_TOLERANCE = 1e-4


@dataclass
class ImportOptions:
    name: str
    int8: bool = False
    resize: str = "resize"
    version: str = "1.0"
    licence: str = "as distributed by the weights' authors"
    calibrate_synth: int = 0
    lowpass_sigma: float | None = None  # declare a low-pass comparison (model pixels)
    model_card: Path | None = None
    threads: int = 1
    replace: bool = False
    provenance: dict[str, Any] | None = None


def _graph_io(cfg: Any) -> dict[str, dict[str, Any]]:
    size, length = cfg.image_size, cfg.num_patches
    pixel = {
        "dtype": "float32",
        "shape": ["batch", cfg.num_channels, size, size],
        "meaning": "preprocessed image (see preprocessing)",
    }
    return {
        "reconstruction": {
            "inputs": {
                "pixel_values": pixel,
                "noise": {
                    "dtype": "float32",
                    "shape": ["batch", length],
                    "meaning": "per-patch noise; the lowest int(L*(1-mask_ratio)) values "
                    "stay visible (HF ViTMAE masking)",
                },
            },
            "outputs": {
                "reconstruction": {
                    "dtype": "float32",
                    "shape": ["batch", length, cfg.patch_dim],
                    "meaning": "predicted normalised pixels per patch, HF logits "
                    "layout (row, col, channel inside a patch)",
                },
                "mask": {
                    "dtype": "float32",
                    "shape": ["batch", length],
                    "meaning": "1 = patch was masked, 0 = visible",
                },
            },
        },
        "embedding": {
            "inputs": {EMBEDDING_INPUTS[0]: pixel},
            "outputs": {
                "embedding": {
                    "dtype": "float32",
                    "shape": ["batch", cfg.hidden_size],
                    "meaning": "mean of the final-norm patch tokens of the unmasked encoder",
                }
            },
        },
    }


def _source_files(hf_dir: Path) -> dict[str, str]:
    names = [
        n
        for n in (SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN, "config.json")
        if (hf_dir / n).is_file()
    ]
    return {n: sha256_file(hf_dir / n) for n in names}


def _drift_inputs(prep: Preprocessing, count: int = 4) -> np.ndarray:
    """Realistic inputs for measuring int8 drift: normal SynthMSK images, preprocessed."""
    from skelex_desktop.core.inference.preprocess import preprocess
    from skelex_desktop.core.synth import generate_image

    images = [
        preprocess(generate_image(7, i, size=prep.size * 2, abnormal=False).monochrome2(), prep)[0]
        for i in range(count)
    ]
    return np.stack(images).astype(np.float32)


def measure_int8_drift(
    cfg: MaeConfig, folder: Path, prep: Preprocessing, threads: int
) -> dict[str, float]:
    """Relative L2 drift of the int8 reconstruction and embedding against fp32 (onnxruntime)."""
    from skelex_desktop.core.inference.errormap import complementary_noise
    from skelex_desktop.core.inference.session import SharedWeights, open_folder_graph

    pixels = _drift_inputs(prep)
    noise = (
        complementary_noise(cfg.grid, 4, 0.75)
        if cfg.grid % 2 == 0
        else np.random.default_rng(0).random((4, cfg.num_patches), dtype=np.float32)
    )
    noise = noise[: len(pixels)]
    out: dict[str, float] = {}
    weights = SharedWeights.unverified(folder)
    for graph, feeds in (
        ("reconstruction", {"pixel_values": pixels, "noise": noise}),
        ("embedding", {"pixel_values": pixels}),
    ):
        ref = open_folder_graph(folder, f"{graph}.onnx", threads, weights).run(None, feeds)[0]
        q = open_folder_graph(folder, f"{graph}.int8.onnx", threads, weights).run(None, feeds)[0]
        out[f"{graph}_relative_l2"] = float(
            np.linalg.norm(q - ref) / max(float(np.linalg.norm(ref)), 1e-12)
        )
        out[f"{graph}_max_abs"] = float(np.abs(q - ref).max())
    return out


def _error_definition(lowpass_sigma: float | None) -> dict[str, Any]:
    """The manifest's description of the error (and the low-pass width, when declared)."""
    error = (
        "masked-only squared error on [0,1] de-normalised RGB, averaged over channels, divided "
        "per pixel by the passes that masked it"
    )
    if lowpass_sigma is None:
        return {"error": error}
    if not (math.isfinite(lowpass_sigma) and lowpass_sigma > 0):
        raise PackageError(f"the low-pass width must be a positive number, not {lowpass_sigma}")
    return {
        "error": error + "; with lowpass_sigma: of the channel-mean input and reconstruction, "
        "each Gaussian-blurred by lowpass_sigma model pixels",
        "lowpass_sigma": float(lowpass_sigma),
    }


def build_manifest(
    cfg: MaeConfig,
    parameters: int,
    folder: Path,
    options: ImportOptions,
    graphs: dict[str, list[str]],
    parity: dict[str, Any],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    prep = Preprocessing(size=cfg.image_size, resize=options.resize)
    io = _graph_io(cfg)
    graph_entries: dict[str, Any] = {}
    for name, graph_files in graphs.items():
        base = name.removesuffix("_int8")
        graph_entries[name] = {"file": graph_files[0], "files": graph_files, **io[base]}
        if name.endswith("_int8"):
            graph_entries[name]["quantisation"] = "dynamic int8 (MatMul weights, onnxruntime)"
    files = {
        p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": options.name,
        "version": options.version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "architecture": {
            "type": "vit_mae",
            "hf_class": "ViTMAEForPreTraining",
            "config": cfg.to_hf(),
            "parameters": int(parameters),
        },
        "preprocessing": {
            "size": prep.size,
            "resize": prep.resize,
            "resample": "bilinear, antialiased (PIL BILINEAR)",
            "intensity": "per-image min-max to 8 bit (truncating)",
            "channels": "grayscale replicated to RGB",
            "letterbox_fill": 0,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
        "patch_size": cfg.patch_size,
        "num_patches": cfg.num_patches,
        "mask_ratio": cfg.mask_ratio,
        "norm_pix_loss": cfg.norm_pix_loss,
        "errormap": {
            "mode": "complementary",
            "passes": 4,
            "reference_passes": 10,
            "reference_seed": 0,
            **_error_definition(options.lowpass_sigma),
            "hotspot_z": DEFAULT_Z,
            "hotspot_threshold": None,
            "score": f"percentile {SCORE_PERCENTILE:g} of the error inside the foreground",
            "score_percentile": SCORE_PERCENTILE,
            "abnormal_threshold": None,
            "calibration": None,
        },
        "graphs": graph_entries,
        "files": files,
        "parity": parity,
        "licence": options.licence,
        "provenance": provenance,
    }


def _release_weights(model: MaskedAutoencoder) -> None:
    """Free the storage of every parameter and buffer of `model` (it is unusable after)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.data = torch.empty(0, dtype=tensor.dtype)


def _place(build: Path, target: Path, replace: bool) -> None:
    """Rename the finished build into place; an existing package is swapped out atomically."""
    if not target.exists():
        os.rename(build, target)
        return
    if not replace:
        raise FileExistsError(
            f"a model package named '{target.name}' already exists in "
            f"{target.parent}; choose another --name"
        )
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    try:
        os.rename(build, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def import_model(
    model: MaskedAutoencoder,
    models_dir: Path,
    options: ImportOptions,
    progress: Progress | None = None,
    provenance: dict[str, Any] | None = None,
    trust: TrustStore | None = None,
    trusted_as: str = IMPORTED,
) -> dict[str, Any]:
    """Package an in-memory MAE as `models_dir/<name>`; returns the manifest.

    `trust`: the store of the data dir the package is for (`TrustStore.for_data_dir`); the
    final manifest is recorded there (as `trusted_as`) before the package is placed. Without
    it nothing is recorded and the registry refuses the package until it is trusted. The
    caller keeps `model` (and its memory) throughout; `import_checkpoint` hands its model over.
    """
    return _import([model], models_dir, options, progress, provenance, trust, trusted_as, False)


def _import(
    handed_over: list[MaskedAutoencoder],
    models_dir: Path,
    options: ImportOptions,
    progress: Progress | None,
    provenance: dict[str, Any] | None,
    trust: TrustStore | None,
    trusted_as: str,
    owned: bool,
) -> dict[str, Any]:
    """`import_model` of the model in `handed_over`, which is taken out of the list. When
    `owned` (nobody else uses it), its weights are freed as soon as the graphs have passed
    their parity check: the int8 copies, the drift measure and the manifest need only the
    files."""
    model = handed_over.pop()
    check_package_name(options.name)
    _error_definition(options.lowpass_sigma)  # refuse a bad width before any work
    if model.config.num_channels != 3:
        raise PackageError(
            f"the model takes {model.config.num_channels} input channels; "
            "packages need RGB (3-channel) ViTMAE checkpoints"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / options.name
    if target.exists() and not options.replace:
        raise FileExistsError(
            f"a model package named '{options.name}' already exists in "
            f"{models_dir}; choose another --name"
        )
    steps = 3 + int(options.int8) + int(options.calibrate_synth > 0)
    if progress:
        progress.set_total(steps)
    build = Path(tempfile.mkdtemp(prefix=f".{options.name}.build-", dir=models_dir))
    try:
        build.chmod(0o755)  # mkdtemp makes it private; a package is readable like any folder
        if progress:
            progress.set_status("exporting ONNX graphs")
        graphs = export_graphs(model, build)
        check(progress)
        if progress:
            progress.advance()
            progress.set_status("checking the graphs against torch")
        report = check_parity(model, build, threads=options.threads)
        if (
            report.max_abs_reconstruction > PARITY_TOLERANCE
            or not report.masks_equal
            or (report.max_abs_embedding > PARITY_TOLERANCE)
        ):
            raise PackageError(f"exported graphs do not match torch: {report}")
        parity = {**asdict(report), "tolerance": PARITY_TOLERANCE, "runtime": "onnxruntime"}
        if progress:
            progress.advance()
        cfg = model.config
        parameters = sum(p.numel() for p in model.parameters())
        if owned:  # emptied in place: the exporter's leftovers may still refer to the module
            _release_weights(model)
        del model
        gc.collect()
        prep = Preprocessing(size=cfg.image_size, resize=options.resize)
        if options.int8:
            if progress:
                progress.set_status("writing the int8 copies")
            graphs.update(quantise_graphs(build))
            parity["int8_drift"] = measure_int8_drift(cfg, build, prep, options.threads)
            if progress:
                progress.advance()
        if options.model_card is not None:
            shutil.copyfile(options.model_card, build / "MODEL_CARD.md")
        import onnx
        import onnxruntime

        prov = {
            "imported_with": f"skelex-desktop {__version__}",
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": OPSET,
            "exporter": "torch.onnx.export(dynamo=True)",
            **(options.provenance or {}),
            **(provenance or {}),
        }
        manifest = build_manifest(cfg, parameters, build, options, graphs, parity, prov)
        if int8_note := parity.get("int8_drift"):
            manifest["graphs"]["reconstruction_int8"]["drift"] = int8_note
        write_manifest(build, manifest)
        if progress:
            progress.advance()
        if options.calibrate_synth > 0:
            from skelex_desktop.core.inference.calibration import calibrate_package

            if progress:
                progress.set_status(f"calibrating on {options.calibrate_synth} SynthMSK images")
            manifest = calibrate_package(
                build, options.calibrate_synth, options.threads, progress=None
            )
            if progress:
                progress.advance()
        read_manifest(build)  # the package parses before it is placed
        if trust is not None:
            trust.record_file(build, trusted_as)
        _place(build, target, options.replace)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return manifest


def import_checkpoint(
    hf_dir: Path,
    models_dir: Path,
    options: ImportOptions,
    progress: Progress | None = None,
    trust: TrustStore | None = None,
    trusted_as: str = IMPORTED,
) -> dict[str, Any]:
    """`model import`: load a HF ViTMAE folder and package it under `models_dir/<name>`,
    recorded in `trust` as `trusted_as` (see `import_model`)."""
    hf_dir = Path(hf_dir)
    if progress:
        progress.set_status(f"reading {hf_dir}")
    handed_over = [load_checkpoint(hf_dir)]  # _import takes it: freed once it has served
    provenance: dict[str, Any] = {
        "source_folder": hf_dir.name,
        "source_files_sha256": _source_files(hf_dir),
    }
    record = hf_dir / "skelex_training.json"  # written by `skelex-desktop pretrain`
    if record.is_file():
        training = json.loads(record.read_text(encoding="utf-8"))
        training.pop("hf_dir", None)
        provenance["training"] = training
    return _import(
        handed_over, Path(models_dir), options, progress, provenance, trust, trusted_as, True
    )
