"""Graphs that share one weights file: every distinct initializer of a package's graphs is
stored once, and each graph's `.onnx` file keeps only its structure and external-data
references (offset, length) into that file.

The graphs of one MAE hold the same encoder weights under different initializer names (the
exporter names folded transposes after their node), so tensors are matched by content:
identical bytes are written once. Small tensors (shapes, scalars)
stay inside the graph file. Each graph records the sha256 of the weights file it reads
(metadata `skelex_weights_sha256`), so a graph file's own hash identifies its weights too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
from onnx import numpy_helper

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
        self._handle.close()

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
                inline = len(data) < INLINE_BYTES
                _clear_data(tensor)
                if inline:
                    tensor.raw_data = data
                    continue
                offset = store.put(data)
                tensor.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (
                    ("location", weights.name),
                    ("offset", str(offset)),
                    ("length", str(len(data))),
                ):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
            graphs[target] = proto
    finally:
        store.close()
    for target, proto in graphs.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = WEIGHTS_SHA256, store.sha256
        onnx.save(proto, str(target))
    return store.tensors


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
