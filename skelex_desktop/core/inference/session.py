"""onnxruntime sessions for verified package graphs (threads from settings, CUDA when present).

A graph whose weights are external data (a format-2 package's shared `weights.bin`, or a
format-1 graph over 2 GB) is built from its verified `.onnx` bytes and verified buffers of its
data files: `SharedWeights` reads each data file once and hands every session the same
OrtValues over it (`SessionOptions.add_initializer`), so weights two graphs share are resident
once. Those sessions run without onnxruntime's graph optimisation and prepacking: its
optimisers read initializer values from the external-data file on disk instead of the shared
values (measured: a zeroed `weights.bin` on disk changed their output; `tests/core/
test_package_v2.py` guards it), and a packed copy per session is what sharing avoids. The
exporter has already folded constants (dynamo, optimize=True); docs/MODEL.md has the measured
speed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skelex_desktop.core.inference.package import (
    PackageError,
    private_buffer,
    read_verified,
    read_verified_buffer,
)

if TYPE_CHECKING:  # onnxruntime ships no type information: these are Any to mypy
    from onnxruntime import InferenceSession, SessionOptions

    from skelex_desktop.core.inference.interfaces import ModelManifest

# the folder a model loaded from bytes resolves external-data names against (checked to exist;
# the values themselves come from our buffers)
_DATA_FOLDER_KEY = "session.model_external_initializers_file_folder_path"


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
    # worker threads sleep between operators instead of spinning: the ViT-L map's 4 passes
    # took 2.0-2.2 s of CPU against 2.6-3.0 s spinning (issue #20, 2 cores shared with other
    # jobs); its operators are large, so waking a worker costs little
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class SharedWeights:
    """External-data files read once (by `read`, e.g. verified against a manifest) and the
    OrtValues over them, shared by every session built here. Sessions keep a reference to
    this object: the OrtValues must outlive them."""

    def __init__(self, read: Callable[[str], np.ndarray]) -> None:
        self._read = read
        self._buffers: dict[str, np.ndarray] = {}
        self._values: dict[tuple[str, int, int, tuple[int, ...]], Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def verified(cls, manifest: ModelManifest) -> SharedWeights:
        """Files of `manifest`'s package, each checked against its sha256 as it is read."""
        return cls(lambda name: read_verified_buffer(manifest, name))

    @classmethod
    def unverified(cls, folder: Path) -> SharedWeights:
        """Files of a package being built (no manifest yet): read as they are."""
        return cls(lambda name: _read_buffer(folder / name))

    @property
    def resident_bytes(self) -> int:
        """Bytes held by the buffers read so far."""
        return sum(b.nbytes for b in self._buffers.values())

    def buffer(self, name: str) -> np.ndarray:
        with self._lock:
            if name not in self._buffers:
                self._buffers[name] = self._read(name)
            return self._buffers[name]

    def session(
        self, model: bytes, folder: Path, files: Sequence[str], threads: int
    ) -> InferenceSession:
        """An InferenceSession of the graph `model` whose external data may only name
        `files` (resolved in `folder`); their values come from this object's buffers."""
        import onnx
        import onnxruntime as ort
        from onnx.helper import tensor_dtype_to_np_dtype

        proto = onnx.ModelProto.FromString(model)
        _refuse_external_attributes(proto)
        options = session_options(threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.add_session_config_entry(_DATA_FOLDER_KEY, str(folder))
        for tensor in proto.graph.initializer:
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {entry.key: entry.value for entry in tensor.external_data}
            location = info.get("location", "")
            if location not in files:
                raise PackageError(
                    f"graph initializer {tensor.name} names external data {location!r}, which "
                    "is not one of the graph's listed files; the package is refused"
                )
            dims = tuple(int(d) for d in tensor.dims)
            key = (location, int(info.get("offset", 0)), tensor.data_type, dims)
            options.add_initializer(tensor.name, self._value(key, info, tensor_dtype_to_np_dtype))
        session = ort.InferenceSession(model, options, providers=providers())
        session.skelex_shared_weights = self  # the OrtValues live as long as the session
        return session

    def _value(
        self,
        key: tuple[str, int, int, tuple[int, ...]],
        info: dict[str, str],
        to_dtype: Callable[[int], np.dtype[Any]],
    ) -> Any:
        import onnxruntime as ort

        with self._lock:
            if key in self._values:
                return self._values[key]
        location, offset, data_type, dims = key
        dtype = np.dtype(to_dtype(data_type))
        count = int(np.prod(dims, dtype=np.int64))
        buffer = self.buffer(location)
        length = int(info.get("length", count * dtype.itemsize))
        if length != count * dtype.itemsize or offset + length > buffer.nbytes:
            raise PackageError(
                f"external data in {location} at {offset} (+{length} bytes) does not hold a "
                f"{dims} {dtype} tensor; the package is refused"
            )
        array = buffer[offset : offset + length].view(dtype).reshape(dims)
        value = ort.OrtValue.ortvalue_from_numpy(array)
        with self._lock:
            return self._values.setdefault(key, value)


def _read_buffer(path: Path) -> np.ndarray:
    """The bytes of `path` in a `private_buffer` (small pages, like the verified ones)."""
    with path.open("rb", buffering=0) as handle:
        buffer = private_buffer(os.fstat(handle.fileno()).st_size)
        view, position = buffer.data, 0
        while position < len(view):
            count = handle.readinto(view[position:])
            if not count:
                raise OSError(f"{path} ended while it was read")
            position += count
    return buffer


def _refuse_external_attributes(proto: Any) -> None:
    """External data is only taken from initializers; a node attribute naming a file would
    be read from disk unchecked."""
    import onnx

    for node in proto.graph.node:
        for attribute in node.attribute:
            tensors = [attribute.t] if attribute.HasField("t") else list(attribute.tensors)
            if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors):
                raise PackageError(
                    f"graph node {node.name} holds external data in an attribute; refused"
                )


def open_graph(
    manifest: ModelManifest, graph: str, threads: int, weights: SharedWeights | None = None
) -> InferenceSession:
    """An InferenceSession of `graph`, built only from bytes that passed their sha256 check.

    A graph in one file is loaded from its verified bytes. A graph with external data (further
    `files`) is loaded from its verified `.onnx` bytes with its data taken from `weights`
    (verified buffers of the package's files; shared by the graphs that use the same files).
    """
    import onnxruntime as ort

    spec = manifest.graph(graph)
    model = read_verified(manifest, spec.file)
    if len(spec.files) == 1:
        return ort.InferenceSession(model, session_options(threads), providers=providers())
    weights = weights or SharedWeights.verified(manifest)
    return weights.session(model, manifest.folder, spec.files[1:], threads)


def open_folder_graph(
    folder: Path, file: str, threads: int, weights: SharedWeights | None = None
) -> InferenceSession:
    """A session of `folder/file` as it is on disk (a package being built), external data
    shared through `weights` like a verified package's."""
    import onnxruntime as ort

    model = (folder / file).read_bytes()
    weights = weights or SharedWeights.unverified(folder)
    if not _has_external_data(model):
        return ort.InferenceSession(model, session_options(threads), providers=providers())
    files = [p.name for p in folder.iterdir() if p.is_file() and p.name != file]
    return weights.session(model, folder, files, threads)


def _has_external_data(model: bytes) -> bool:
    import onnx

    proto = onnx.ModelProto.FromString(model)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
