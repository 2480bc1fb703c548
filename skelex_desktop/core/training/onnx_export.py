"""ONNX export of the MAE graphs (torch dynamo exporter) and their parity checks.

Reconstruction: `pixel_values` [B, 3, S, S] + `noise` [B, L] -> `reconstruction` [B, L, P*P*C],
`mask` [B, L]. Embedding: `pixel_values` -> `embedding` [B, D]. The batch axis is dynamic.
A graph whose weights exceed 2 GB is saved with external data (`<file>.data` beside it).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skelex_desktop.core.training.mae import EmbeddingGraph, MaskedAutoencoder, ReconstructionGraph

OPSET = 20
EXTERNAL_DATA_BYTES = 2_000_000_000
RECONSTRUCTION_INPUTS = ("pixel_values", "noise")
RECONSTRUCTION_OUTPUTS = ("reconstruction", "mask")
EMBEDDING_INPUTS = ("pixel_values",)
EMBEDDING_OUTPUTS = ("embedding",)


@dataclass(frozen=True)
class ParityReport:
    """Largest differences between the ONNX graph (onnxruntime) and torch, on seeded inputs."""

    max_abs_reconstruction: float
    masks_equal: bool
    max_abs_embedding: float
    batch_sizes: tuple[int, ...]


def _weight_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.state_dict().values())


def _export(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    external: bool,
) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {name: {0: batch} for name in inputs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet = logging.getLogger("torch.onnx")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                module,
                args,
                None,
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_shapes=dynamic,
                opset_version=OPSET,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
        finally:
            quiet.setLevel(level)
    assert program is not None
    program.save(str(path), external_data=external)


def sample_inputs(
    model: MaskedAutoencoder, batch: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded `pixel_values` and `noise` of the right shapes."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch, cfg.num_channels, cfg.image_size, cfg.image_size, generator=gen)
    return pixels, torch.rand(batch, cfg.num_patches, generator=gen)


def export_graphs(model: MaskedAutoencoder, folder: Path) -> dict[str, list[str]]:
    """Write `reconstruction.onnx` and `embedding.onnx` into `folder`; returns the files of each
    graph (the .onnx file first, then any external data)."""
    model = model.eval().float()
    external = _weight_bytes(model) > EXTERNAL_DATA_BYTES
    files: dict[str, list[str]] = {}
    with torch.no_grad():
        pixels, noise = sample_inputs(model, 2)
        _export(
            ReconstructionGraph(model),
            (pixels, noise),
            folder / "reconstruction.onnx",
            RECONSTRUCTION_INPUTS,
            RECONSTRUCTION_OUTPUTS,
            external,
        )
        _export(
            EmbeddingGraph(model),
            (pixels,),
            folder / "embedding.onnx",
            EMBEDDING_INPUTS,
            EMBEDDING_OUTPUTS,
            external,
        )
    for graph in ("reconstruction", "embedding"):
        names = [f"{graph}.onnx"]
        names += sorted(p.name for p in folder.glob(f"{graph}.onnx.*"))
        files[graph] = names
    return files


def check_parity(
    model: MaskedAutoencoder, folder: Path, batch_sizes: tuple[int, ...] = (1, 3), threads: int = 1
) -> ParityReport:
    """Run both graphs with onnxruntime against torch on seeded inputs of several batch sizes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    rec = ort.InferenceSession(
        str(folder / "reconstruction.onnx"), options, providers=["CPUExecutionProvider"]
    )
    emb = ort.InferenceSession(
        str(folder / "embedding.onnx"), options, providers=["CPUExecutionProvider"]
    )
    worst_rec, worst_emb, masks_equal = 0.0, 0.0, True
    model = model.eval()
    for i, batch in enumerate(batch_sizes):
        pixels, noise = sample_inputs(model, batch, seed=100 + i)
        with torch.no_grad():
            t_rec, t_mask = model(pixels, noise)
            t_emb = model.embed(pixels)
        o_rec, o_mask = rec.run(None, {"pixel_values": pixels.numpy(), "noise": noise.numpy()})
        (o_emb,) = emb.run(None, {"pixel_values": pixels.numpy()})
        worst_rec = max(worst_rec, float(np.abs(o_rec - t_rec.numpy()).max()))
        worst_emb = max(worst_emb, float(np.abs(o_emb - t_emb.numpy()).max()))
        masks_equal = masks_equal and bool(np.array_equal(o_mask, t_mask.numpy()))
    return ParityReport(worst_rec, masks_equal, worst_emb, tuple(batch_sizes))


def quantise_dynamic(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights of an ONNX graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            use_external_data_format=source.stat().st_size > EXTERNAL_DATA_BYTES,
        )
    finally:
        root.setLevel(level)
