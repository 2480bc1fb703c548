"""onnxruntime sessions for verified package graphs (threads from settings, CUDA when present)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skelex_desktop.core.inference.package import Manifest, read_verified, verify_file

if TYPE_CHECKING:  # onnxruntime ships no type information: these are Any to mypy
    from onnxruntime import InferenceSession, SessionOptions


def providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, always CPU as the fallback."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider",) if p in available]
    return [*chosen, "CPUExecutionProvider"]


def session_options(threads: int) -> SessionOptions:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def open_graph(manifest: Manifest, graph: str, threads: int) -> InferenceSession:
    """An InferenceSession of `graph`, built only from bytes that passed their sha256 check.

    Single-file graphs are loaded from the verified bytes themselves; graphs with external data
    (over 2 GB) are verified file by file, then loaded from their path.
    """
    import onnxruntime as ort

    spec = manifest.graph(graph)
    options = session_options(threads)
    if len(spec.files) == 1:
        model: bytes | str = read_verified(manifest, spec.file)
    else:
        for name in spec.files:
            verify_file(manifest, name)
        model = str(manifest.folder / spec.file)
    return ort.InferenceSession(model, options, providers=providers())
