"""Package format 2 (issue #20): the graphs share one weights file, stored and loaded once.

A tiny `transformers` ViTMAE goes through `model import --int8` on the command line; the
package's encoder weights are stored once, its maps and embeddings equal those of the same
graphs written the format-1 way (each graph carrying its weights), `errormap` works, and a
changed byte is refused even when the file's size and modification time are put back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
onnx = pytest.importorskip("onnx")

from skelex_desktop.cli import main  # noqa: E402
from skelex_desktop.core.inference import service as service_module  # noqa: E402
from skelex_desktop.core.inference.package import (  # noqa: E402
    MANIFEST,
    PackageError,
    read_manifest,
    sha256_file,
    write_manifest,
)
from skelex_desktop.core.inference.registry import Registry  # noqa: E402
from skelex_desktop.core.inference.service import MaeRuntime  # noqa: E402
from skelex_desktop.core.inference.trust import IMPORTED, TrustStore  # noqa: E402
from skelex_desktop.core.settings import Settings  # noqa: E402
from skelex_desktop.core.training.weight_store import INLINE_BYTES, WEIGHTS_SHA256  # noqa: E402
from tests.core.test_mae_helpers import write_png  # noqa: E402

HF_TINY = dict(
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=96,
    decoder_hidden_size=32,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=64,
    image_size=64,
    patch_size=16,
)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding package 'v2', imported from a `save_pretrained` folder (with int8)."""
    root = tmp_path_factory.mktemp("v2")
    torch.manual_seed(0)
    hf = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**HF_TINY)).eval()
    hf.save_pretrained(root / "hf")
    data = root / "data"
    args = ["--data-dir", str(data), "model", "import", str(root / "hf"), "--name", "v2", "--int8"]
    assert main(args) == 0
    return data


@pytest.fixture
def data_dir(imported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the imported data dir (safe to damage); no bundled packages."""
    import shutil

    monkeypatch.setenv("SKELEX_BUNDLED_MODELS", str(tmp_path / "bundled"))
    monkeypatch.setattr(service_module, "_services", {})  # each test loads afresh
    data = tmp_path / "data"
    shutil.copytree(imported, data)
    return data


def _external_refs(graph: Path) -> tuple[set[tuple[str, int, int]], int]:
    """(location, offset, length) of each external initializer, and the largest inline one."""
    proto = onnx.load(str(graph), load_external_data=False)
    refs, inline = set(), 0
    for tensor in proto.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in tensor.external_data}
            refs.add((info["location"], int(info["offset"]), int(info["length"])))
        else:
            inline = max(inline, len(tensor.raw_data))
    return refs, inline


def test_import_stores_the_shared_weights_once(imported: Path) -> None:
    folder = imported / "models" / "v2"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format_version"] == 2
    assert set(manifest["files"]) == {
        "reconstruction.onnx",
        "embedding.onnx",
        "weights.bin",
        "reconstruction.int8.onnx",
        "embedding.int8.onnx",
        "weights.int8.bin",
    }
    for graph, weights in (("", "weights.bin"), (".int8", "weights.int8.bin")):
        rec, rec_inline = _external_refs(folder / f"reconstruction{graph}.onnx")
        emb, emb_inline = _external_refs(folder / f"embedding{graph}.onnx")
        assert max(rec_inline, emb_inline) < INLINE_BYTES  # no weights left inside a graph
        assert {r[0] for r in rec | emb} == {weights}
        # the embedding graph is the encoder: every tensor it reads, the reconstruction reads
        # at the same place; the file holds nothing twice
        assert emb <= rec and len(emb) >= 4 * HF_TINY["num_hidden_layers"]
        raw = (folder / weights).read_bytes()
        contents = [raw[offset : offset + length] for _, offset, length in rec]
        assert len(set(contents)) == len(contents)
        assert len(raw) < sum(map(len, contents)) + 4096 * len(contents)
        for name in (f"reconstruction{graph}", f"embedding{graph}"):
            key = name.replace(".int8", "_int8")
            assert manifest["graphs"][key]["files"] == [f"{name}.onnx", weights]
            # the graph file names its weights' sha256: its own hash identifies them too
            props = {p.key: p.value for p in onnx.load(str(folder / f"{name}.onnx")).metadata_props}
            assert props[WEIGHTS_SHA256] == manifest["files"][weights]["sha256"]
    fp32 = (folder / "weights.bin").stat().st_size
    params = manifest["architecture"]["parameters"]
    assert fp32 < 4 * params * 1.05 + 4096 * 80  # the encoder is not stored a second time


def test_int8_copies_are_onnxruntimes_dynamic_quantisation(imported: Path, tmp_path: Path) -> None:
    """The int8 graphs, written from weights.bin one tensor at a time, are what onnxruntime's
    `quantize_dynamic` makes of the fp32 graphs (the way they were written before): the same
    nodes, the same initializer values and so the same outputs, bit for bit."""
    import shutil

    import onnxruntime as ort
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = imported / "models" / "v2"
    for file in ("reconstruction.onnx", "embedding.onnx", "weights.bin"):
        shutil.copyfile(folder / file, tmp_path / file)  # the quantiser writes beside its input
    rng = np.random.default_rng(6)
    pixels = rng.normal(0, 1, (3, 3, 64, 64)).astype(np.float32)
    feeds = {
        "reconstruction": {"pixel_values": pixels, "noise": rng.random((3, 16), np.float32)},
        "embedding": {"pixel_values": pixels},
    }
    for graph in ("reconstruction", "embedding"):
        reference = tmp_path / f"{graph}.ort-int8.onnx"
        quantize_dynamic(
            str(tmp_path / f"{graph}.onnx"),
            str(reference),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            use_external_data_format=True,
        )
        ours, theirs = onnx.load(str(folder / f"{graph}.int8.onnx")), onnx.load(str(reference))

        def nodes(proto: onnx.ModelProto) -> list[bytes]:
            return sorted(n.SerializeToString(deterministic=True) for n in proto.graph.node)

        assert nodes(ours) == nodes(theirs)
        mine = {t.name: numpy_helper.to_array(t) for t in ours.graph.initializer}
        ort_values = {t.name: numpy_helper.to_array(t) for t in theirs.graph.initializer}
        assert mine.keys() == ort_values.keys()
        assert sum(a.dtype == np.int8 and a.ndim == 2 for a in mine.values()) >= 4
        for name, value in mine.items():
            assert value.dtype == ort_values[name].dtype, name
            assert np.array_equal(value, ort_values[name]), name
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        a = ort.InferenceSession(ours.SerializeToString(), options).run(None, feeds[graph])
        b = ort.InferenceSession(str(reference), options).run(None, feeds[graph])
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _as_format_1(folder: Path, target: Path) -> None:
    """The same graphs written the format-1 way: each `.onnx` file holds all its weights."""
    target.mkdir(parents=True)
    data = json.loads((folder / MANIFEST).read_text())
    data["format_version"] = 1
    for graph in data["graphs"].values():
        proto = onnx.load(str(folder / graph["file"]))  # external data read from beside it
        onnx.save(proto, str(target / graph["file"]))
        graph["files"] = [graph["file"]]
    data["files"] = {
        p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(target.iterdir())
    }
    data.pop("supersedes", None)
    write_manifest(target, data)


def test_maps_and_embeddings_equal_the_format_1_graphs(data_dir: Path, tmp_path: Path) -> None:
    models = data_dir / "models"
    _as_format_1(models / "v2", models / "v1")
    TrustStore.for_data_dir(data_dir).record_file(models / "v1", IMPORTED)
    registry = Registry.from_settings(Settings(data_dir=data_dir))
    v1, v2 = registry.manifest("v1"), registry.manifest("v2")
    assert (v1.format_version, v2.format_version) == (1, 2)
    assert sum(int(e["bytes"]) for e in v1.files.values()) > 1.5 * v2.files["weights.bin"]["bytes"]
    pixels = np.random.default_rng(3).normal(1000, 120, (90, 70)).astype(np.float32)
    batch = np.random.default_rng(4).normal(0, 1, (3, 3, 64, 64)).astype(np.float32)
    for int8 in (False, True):
        old, new = MaeRuntime(v1, int8=int8), MaeRuntime(v2, int8=int8)
        for mode in ("complementary", "reference"):
            a, b = old.error_map(pixels, mode).model_map, new.error_map(pixels, mode).model_map
            assert np.abs(a - b).max() <= 1e-5 * max(1.0, float(np.abs(a).max()))
        assert np.abs(old.embed(batch) - new.embed(batch)).max() <= 1e-5
    # fp32 maps and embeddings read one buffer: weights.bin, once
    runtime = MaeRuntime(v2)
    runtime.embed(batch)
    assert runtime.weights.resident_bytes == v2.files["weights.bin"]["bytes"]


def test_errormap_on_the_command_line(data_dir: Path, tmp_path: Path, capsys) -> None:
    image = write_png(tmp_path / "x.png")
    out = tmp_path / "map.npy"
    args = ["--data-dir", str(data_dir), "errormap", str(image), "--model", "v2"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "v2" and np.load(out).shape == (90, 130)
    manifest = Registry.from_settings(Settings(data_dir=data_dir)).manifest("v2")
    direct = MaeRuntime(manifest).analyse(cv2_read(image))
    assert np.allclose(np.load(out), direct.error_map, atol=1e-6)
    assert main(["--data-dir", str(data_dir), "model", "verify", "v2"]) == 0
    assert "all 6 files verified" in capsys.readouterr().out


def cv2_read(path: Path) -> np.ndarray:
    from skelex_desktop.core.ingest.pixels import read_frame

    return read_frame(path, 0).model_pixels


def _flip_keeping_size_and_mtime(path: Path, at: int) -> None:
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.seek(at)
        byte = handle.read(1)
        handle.seek(at)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize(
    "file",
    ["weights.bin", "reconstruction.onnx", "embedding.onnx", "weights.int8.bin"],
)
def test_a_changed_byte_is_refused_with_size_and_mtime_kept(
    data_dir: Path, tmp_path: Path, file: str, capsys
) -> None:
    args = ["--data-dir", str(data_dir)]
    assert main([*args, "model", "verify", "v2"]) == 0  # hashes memoised in this process
    capsys.readouterr()
    path = data_dir / "models" / "v2" / file
    _flip_keeping_size_and_mtime(path, path.stat().st_size // 2)
    assert main([*args, "model", "verify", "v2"]) == 1
    assert f"{file} fails its sha256 check" in capsys.readouterr().err
    image = write_png(tmp_path / "x.png")
    errormap = [*args, "errormap", str(image), "--model", "v2", "--out", str(tmp_path / "m.npy")]
    manifest = Registry.from_settings(Settings(data_dir=data_dir)).read("v2")
    if file.startswith("weights.int8"):
        # only the int8 graphs read it: the fp32 map does not hash it, the int8 runtime refuses
        assert main(errormap) == 0
        with pytest.raises(PackageError, match=f"{file} fails its sha256 check"):
            MaeRuntime(manifest, int8=True)
        return
    assert main(errormap) == 1  # every file the runtime may use is checked when it is loaded
    assert f"{file} fails its sha256 check" in capsys.readouterr().err
    assert not (tmp_path / "m.npy").exists()
    assert service_module._services[(str(data_dir), "v2", False)]._runtime is None
    if file != "reconstruction.onnx":  # the int8 runtime's embedding graph reads it
        with pytest.raises(PackageError, match=f"{file} fails its sha256 check"):
            MaeRuntime(manifest, int8=True)


def test_sessions_use_the_verified_buffer_not_the_file(data_dir: Path) -> None:
    """Once read and checked, the weights are not read from disk again: a later change of the
    file does not reach a session built afterwards from the same runtime."""
    manifest = Registry.from_settings(Settings(data_dir=data_dir)).manifest("v2")
    batch = np.random.default_rng(5).normal(0, 1, (2, 3, 64, 64)).astype(np.float32)
    expected = MaeRuntime(manifest).embed(batch)
    runtime = MaeRuntime(manifest)  # reads and checks weights.bin, opens the map graph
    weights = data_dir / "models" / "v2" / "weights.bin"
    weights.write_bytes(bytes(weights.stat().st_size))  # zeros, same size
    assert np.array_equal(runtime.embed(batch), expected)


def test_format_1_demo_package_still_loads_and_verifies(tmp_path: Path, capsys) -> None:
    from skelex_desktop.core.resources import bundled_models_dir

    demo = bundled_models_dir() / "skelex-demo"
    if not (demo / MANIFEST).is_file():
        pytest.skip("the bundled demo package is not in this checkout")
    assert read_manifest(demo).format_version == 1
    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "model", "verify", "skelex-demo"]) == 0
    assert "verified" in capsys.readouterr().out
    out = tmp_path / "demo.npy"
    image = write_png(tmp_path / "x.png")
    assert main([*data, "errormap", str(image), "--model", "skelex-demo", "--out", str(out)]) == 0
    assert np.load(out).shape == (90, 130)
