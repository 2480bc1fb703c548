"""Graphs that share one weights file: every distinct initializer of a package's graphs is
stored once, and each graph's `.onnx` file keeps only its structure and external-data
references (offset, length) into that file.

The graphs of one MAE hold the same encoder weights under different initializer names (the
exporter names folded transposes after their node), so tensors are matched by content:
identical bytes are written once. Small tensors (shapes, scalars)
stay inside the graph file. Each graph records the sha256 of the weights file it reads
(metadata `skelex_weights_sha256`), so a graph file's own hash identifies its weights too.

`quantise_weights` writes the dynamic int8 copies of such graphs straight from their weights
file, one tensor at a time: the graphs onnxruntime's `quantize_dynamic` writes for MatMul
(QInt8 weights, symmetric, per tensor; uint8 activations quantised on the fly), without
loading a whole fp32 graph.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from skelex_desktop.core.inference.package import remember_sha256

INLINE_BYTES = 1024  # tensors smaller than this stay inside the .onnx file
WEIGHTS_SHA256 = "skelex_weights_sha256"  # graph metadata: the sha256 of its weights file
ALIGN = 4096  # each stored tensor starts on a page boundary (mmap-friendly, aligned views)


class WeightFile:
    """Appends tensors to one file, each distinct content once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offsets: dict[str, int] = {}
        self._handle = path.open("wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def put(self, data: bytes) -> int:
        """The offset of `data` in the file (written on its first appearance; the graphs say
        what type and shape they read there)."""
        key = hashlib.sha256(data).hexdigest()
        if key not in self._offsets:
            pad = -self.size % ALIGN
            for chunk in (b"\0" * pad, data):
                self._handle.write(chunk)
                self._digest.update(chunk)
            self._offsets[key] = self.size + pad
            self.size += pad + len(data)
        return self._offsets[key]

    def close(self) -> None:
        """Close the file; its sha256, taken while it was written, is remembered for
        `sha256_file` (the package's manifest lists it)."""
        if not self._handle.closed:
            self._handle.close()
            remember_sha256(self.path, self.sha256)

    @property
    def sha256(self) -> str:
        """The sha256 of everything written so far."""
        return self._digest.hexdigest()

    @property
    def tensors(self) -> int:
        return len(self._offsets)


def share_weights(sources: dict[Path, Path], weights: Path) -> int:
    """Write each source graph to its target with its large initializers stored once in
    `weights` (a file name beside the targets); returns the number of distinct tensors stored.

    A source may hold its weights inline or in external data beside it (read tensor by tensor,
    so memory stays at one tensor plus the graph structure).
    """
    store = WeightFile(weights)
    graphs: dict[Path, onnx.ModelProto] = {}
    try:
        for source, target in sources.items():
            proto = onnx.load(str(source), load_external_data=False)
            for tensor in proto.graph.initializer:
                data = numpy_helper.to_array(tensor, str(source.parent)).tobytes()
                _external(tensor, store, data)
            graphs[target] = proto
    finally:
        store.close()
    _save(graphs, store.sha256)
    return store.tensors


def _save(graphs: dict[Path, onnx.ModelProto], weights_sha256: str) -> None:
    """Write each graph, naming the sha256 of its weights file (one entry, replacing any)."""
    for target, proto in graphs.items():
        kept = [p for p in proto.metadata_props if p.key != WEIGHTS_SHA256]
        proto.ClearField("metadata_props")
        proto.metadata_props.extend(kept)
        prop = proto.metadata_props.add()
        prop.key, prop.value = WEIGHTS_SHA256, weights_sha256
        onnx.save(proto, str(target))


def _external(tensor: onnx.TensorProto, store: WeightFile, data: bytes) -> None:
    """Make `tensor` (its values cleared) read `data` from `store` (small data stays inline)."""
    _clear_data(tensor)
    if len(data) < INLINE_BYTES:
        tensor.raw_data = data
        return
    _refer(tensor, store, store.put(data), len(data))


def _refer(tensor: onnx.TensorProto, store: WeightFile, offset: int, length: int) -> None:
    """Make `tensor` (no values) read `length` bytes at `offset` of `store`'s file."""
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (
        ("location", store.path.name),
        ("offset", str(offset)),
        ("length", str(length)),
    ):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


class _SourceTensors:
    """Initializer values of graphs whose large tensors live in weights files beside them,
    read one tensor at a time (`os.pread`: nothing stays mapped or cached in the process)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._handles: dict[str, int] = {}

    def key(self, tensor: onnx.TensorProto) -> tuple[str, int, int] | None:
        """(file, offset, length) of an external tensor; None for one inside the graph."""
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            return None
        info = {entry.key: entry.value for entry in tensor.external_data}
        return info["location"], int(info.get("offset", 0)), int(info.get("length", -1))

    def bytes(self, tensor: onnx.TensorProto) -> bytes:
        key = self.key(tensor)
        if key is None:
            return numpy_helper.to_array(tensor).tobytes()
        location, offset, length = key
        if length < 0:
            raise ValueError(f"external tensor {tensor.name} has no length")
        if location not in self._handles:
            if Path(location).name != location:
                raise ValueError(f"external data {location!r} is not a file beside the graph")
            self._handles[location] = os.open(self.folder / location, os.O_RDONLY)
        data = os.pread(self._handles[location], length, offset)
        if len(data) != length:
            raise ValueError(f"{location} ends inside tensor {tensor.name}")
        return data

    def array(self, tensor: onnx.TensorProto) -> np.ndarray[Any, Any]:
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        return np.frombuffer(self.bytes(tensor), dtype).reshape(tuple(tensor.dims))

    def close(self) -> None:
        for handle in self._handles.values():
            os.close(handle)
        self._handles.clear()


def _quantise_int8(weight: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], float, int]:
    """(int8 values, scale, zero point) of a weight, by onnxruntime's own function with the
    settings `quantize_dynamic(weight_type=QInt8)` uses (symmetric, full range, per tensor)."""
    from onnxruntime.quantization.quant_utils import quantize_data

    zero_point, scale, values = quantize_data(
        weight.ravel(), onnx.TensorProto.INT8, True, reduce_range=False, min_real_range=None
    )
    q = np.asarray(values, dtype=np.int8).reshape(weight.shape)
    return q, float(np.asarray(scale).reshape(-1)[0]), int(np.asarray(zero_point).reshape(-1)[0])


def quantise_weights(sources: dict[Path, Path], weights: Path) -> int:
    """Write the dynamic int8 copy of each source graph to its target, the copies' large
    initializers once in `weights` (a file name beside the targets); returns the number of
    distinct tensors stored.

    The result is the graph onnxruntime's `quantize_dynamic(weight_type=QInt8,
    op_types_to_quantize=["MatMul", "Gemm"])` writes (its defaults: MatMul with a constant B
    only, per-tensor symmetric int8 weights by its `quantize_data`, the A input quantised to
    uint8 by a DynamicQuantizeLinear shared by the MatMuls that read it, MatMulInteger, Cast,
    scale products; Gemm is not quantised in that mode; `tests/core/test_package_v2.py` compares
    the two), built from the graph structure while the weights are read one tensor at a
    time from the sources' weights files: memory stays at one tensor plus the graphs.
    """
    store = WeightFile(weights)
    tensors: dict[Path, _SourceTensors] = {}
    quantised: dict[tuple[str, int, int], tuple[int, int, float, int]] = {}
    graphs: dict[Path, onnx.ModelProto] = {}
    try:
        for source, target in sources.items():
            proto = onnx.load(str(source), load_external_data=False)
            reader = tensors.setdefault(source.parent, _SourceTensors(source.parent))
            graphs[target] = _quantise_graph(proto, reader, store, quantised)
    finally:
        store.close()
        for reader in tensors.values():
            reader.close()
    _save(graphs, store.sha256)
    return store.tensors


def _quantise_graph(
    proto: onnx.ModelProto,
    reader: _SourceTensors,
    store: WeightFile,
    cache: dict[tuple[str, int, int], tuple[int, int, float, int]],
) -> onnx.ModelProto:
    graph = proto.graph
    initializers = {t.name: t for t in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    new: list[onnx.TensorProto] = []
    done: set[str] = set()  # weights quantised in this graph (by name)
    activations: set[str] = set()  # inputs already quantised by a DynamicQuantizeLinear
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or weight.data_type != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        a = node.input[0]
        if a in initializers or not a:
            nodes.append(node)
            continue
        if weight.name not in done:
            # the graphs read the same weight at the same place: quantised once
            key = reader.key(weight)
            hit = cache.get(key) if key is not None else None
            q = onnx.TensorProto(name=weight.name + "_quantized", data_type=onnx.TensorProto.INT8)
            q.dims.extend(weight.dims)
            if hit is None:
                values, scale, zero = _quantise_int8(reader.array(weight))
                _external(q, store, values.tobytes())
                if q.data_location == onnx.TensorProto.EXTERNAL and key is not None:
                    info = {entry.key: entry.value for entry in q.external_data}
                    cache[key] = (int(info["offset"]), values.nbytes, scale, zero)
            else:
                offset, length, scale, zero = hit
                _refer(q, store, offset, length)
            new += [
                numpy_helper.from_array(np.array(scale, np.float32), weight.name + "_scale"),
                numpy_helper.from_array(np.array(zero, np.int8), weight.name + "_zero_point"),
                q,
            ]
            done.add(weight.name)
        if a not in activations:
            nodes.append(
                helper.make_node(
                    "DynamicQuantizeLinear",
                    [a],
                    [a + "_quantized", a + "_scale", a + "_zero_point"],
                    a + "_QuantizeLinear",
                )
            )
            activations.add(a)
        name = node.name + "_quant" if node.name else ""
        integer = node.output[0] + "_output_quantized"
        scales = [a + "_scale", weight.name + "_scale"]
        scales_mul = name + "_scales_mul" if name else "_".join(scales) + "_mul"
        nodes += [
            helper.make_node(
                "MatMulInteger",
                [a + "_quantized", weight.name + "_quantized"]
                + [a + "_zero_point", weight.name + "_zero_point"],
                [integer],
                name,
            ),
            helper.make_node(
                "Cast", [integer], [integer + "_cast_output"], integer + "_cast", to=1
            ),
            helper.make_node("Mul", scales, [scales_mul + ":0"], scales_mul),
            helper.make_node(
                "Mul",
                [integer + "_cast_output", scales_mul + ":0"],
                [node.output[0]],
                name + "_output_scale_mul" if name else "",
            ),
        ]
    graph.ClearField("node")
    graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    graph.ClearField("initializer")
    for tensor in kept:
        _external(tensor, store, reader.bytes(tensor))
    graph.initializer.extend(kept + new)
    return proto


def _clear_data(tensor: onnx.TensorProto) -> None:
    """Drop a tensor's stored values (inline or external), keeping name, type and shape."""
    for name in (
        "raw_data",
        "float_data",
        "int32_data",
        "int64_data",
        "double_data",
        "uint64_data",
        "string_data",
        "external_data",
    ):
        tensor.ClearField(name)
    tensor.data_location = onnx.TensorProto.DEFAULT
