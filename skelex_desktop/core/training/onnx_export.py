"""ONNX export of the MAE graphs (torch dynamo exporter) and their parity checks.

Reconstruction: `pixel_values` [B, 3, S, S] + `noise` [B, L] -> `reconstruction` [B, L, P*P*C],
`mask` [B, L]. Embedding: `pixel_values` -> `embedding` [B, D]. The batch axis is dynamic.
Both graphs keep their weights in one shared file, `weights.bin`, each distinct tensor once
(the encoder is in both graphs); the dynamic int8 copies likewise share `weights.int8.bin`
(`weight_store.py`, package format 2).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skelex_desktop.core.training.mae import EmbeddingGraph, MaskedAutoencoder, ReconstructionGraph
from skelex_desktop.core.training.weight_store import quantise_weights, share_weights

OPSET = 20
GRAPHS = ("reconstruction", "embedding")
WEIGHTS = "weights.bin"
INT8_WEIGHTS = "weights.int8.bin"
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


def _export(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
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
    program.save(str(path), external_data=True)
    # the written graph's initializers are the module's parameters and folded copies of them;
    # onnxscript's rewrite rules keep the last graph they matched in module-level state, so
    # drop the graph's hold on its tensors (package_writer frees the parameters themselves)
    for value in program.model.graph.initializers.values():
        value.const_value = None


def sample_inputs(
    model: MaskedAutoencoder, batch: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded `pixel_values` and `noise` of the right shapes."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch, cfg.num_channels, cfg.image_size, cfg.image_size, generator=gen)
    return pixels, torch.rand(batch, cfg.num_patches, generator=gen)


def export_graphs(model: MaskedAutoencoder, folder: Path) -> dict[str, list[str]]:
    """Write `reconstruction.onnx` and `embedding.onnx` into `folder`, their weights once in
    `weights.bin`; returns the files of each graph (the .onnx file first)."""
    model = model.eval().float()
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        with torch.no_grad():
            pixels, noise = sample_inputs(model, 2)
            _export(
                ReconstructionGraph(model),
                (pixels, noise),
                staging / "reconstruction.onnx",
                RECONSTRUCTION_INPUTS,
                RECONSTRUCTION_OUTPUTS,
            )
            _export(
                EmbeddingGraph(model),
                (pixels,),
                staging / "embedding.onnx",
                EMBEDDING_INPUTS,
                EMBEDDING_OUTPUTS,
            )
        share_weights(
            {staging / f"{g}.onnx": folder / f"{g}.onnx" for g in GRAPHS}, folder / WEIGHTS
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {g: [f"{g}.onnx", WEIGHTS] for g in GRAPHS}


def check_parity(
    model: MaskedAutoencoder, folder: Path, batch_sizes: tuple[int, ...] = (1, 3), threads: int = 1
) -> ParityReport:
    """Run both graphs with onnxruntime against torch on seeded inputs of several batch sizes."""
    from skelex_desktop.core.inference.session import SharedWeights, open_folder_graph

    weights = SharedWeights.unverified(folder)  # both graphs on one copy of the weights
    rec = open_folder_graph(folder, "reconstruction.onnx", threads, weights)
    emb = open_folder_graph(folder, "embedding.onnx", threads, weights)
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


def quantise_graphs(folder: Path) -> dict[str, list[str]]:
    """Dynamic int8 copies of both graphs in `folder` (`<graph>.int8.onnx`), their weights once
    in `weights.int8.bin`; returns the files of each (`<graph>_int8`).

    The copies are what onnxruntime's `quantize_dynamic` makes of MatMul weights (int8,
    symmetric, per tensor), written from `weights.bin` one tensor at a time
    (`weight_store.quantise_weights`), so no fp32 graph is ever loaded whole.
    """
    quantise_weights(
        {folder / f"{g}.onnx": folder / f"{g}.int8.onnx" for g in GRAPHS}, folder / INT8_WEIGHTS
    )
    return {f"{g}_int8": [f"{g}.int8.onnx", INT8_WEIGHTS] for g in GRAPHS}
