"""The exported ONNX graphs against our torch module: values, masks, dynamic batch, int8."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from skelex_desktop.core.inference.errormap import complementary_noise  # noqa: E402
from tests.core.test_mae_helpers import tiny_model, tiny_package_root  # noqa: E402


def _session(name: str):
    return ort.InferenceSession(
        str(tiny_package_root() / "tiny" / name), providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_reconstruction_graph_matches_torch_for_any_batch(batch: int) -> None:
    model = tiny_model()
    gen = torch.Generator().manual_seed(batch)
    pixels = torch.randn(batch, 3, 64, 64, generator=gen)
    noise = torch.rand(batch, 16, generator=gen)
    recon, mask = _session("reconstruction.onnx").run(
        None, {"pixel_values": pixels.numpy(), "noise": noise.numpy()}
    )
    with torch.no_grad():
        t_recon, t_mask = model(pixels, noise)
    assert recon.shape == (batch, 16, 16 * 16 * 3)
    assert np.abs(recon - t_recon.numpy()).max() <= 1e-4
    assert np.array_equal(mask, t_mask.numpy())
    assert (mask.sum(axis=1) == 12).all()  # 0.75 of 16 patches hidden
    lowest = np.argsort(noise.numpy(), axis=1)[:, :4]
    assert (np.take_along_axis(mask, lowest, axis=1) == 0).all()  # lowest noise stays visible


def test_embedding_graph_matches_torch() -> None:
    model = tiny_model()
    pixels = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    (emb,) = _session("embedding.onnx").run(None, {"pixel_values": pixels.numpy()})
    with torch.no_grad():
        expected = model.embed(pixels).numpy()
    assert emb.shape == (3, 32)
    assert np.abs(emb - expected).max() <= 1e-4


def test_complementary_noise_through_the_graph_masks_each_patch_three_times() -> None:
    noise = complementary_noise(grid=4, passes=4, mask_ratio=0.75)
    pixels = np.zeros((4, 3, 64, 64), np.float32)
    _, mask = _session("reconstruction.onnx").run(None, {"pixel_values": pixels, "noise": noise})
    assert (mask.sum(axis=0) == 3).all()
    assert (mask.sum(axis=1) == 12).all()


def test_manifest_documents_graphs_parity_and_int8_drift() -> None:
    manifest = json.loads((tiny_package_root() / "tiny" / "manifest.json").read_text())
    assert manifest["parity"]["max_abs_reconstruction"] <= 1e-4
    assert manifest["parity"]["masks_equal"] is True
    rec = manifest["graphs"]["reconstruction"]
    assert list(rec["inputs"]) == ["pixel_values", "noise"]
    assert list(rec["outputs"]) == ["reconstruction", "mask"]
    assert manifest["graphs"]["embedding"]["outputs"]["embedding"]["shape"] == ["batch", 32]
    drift = manifest["graphs"]["reconstruction_int8"]["drift"]
    assert 0 < drift["reconstruction_relative_l2"] < 0.5
    assert set(manifest["files"]) == {
        "reconstruction.onnx",
        "embedding.onnx",
        "reconstruction.int8.onnx",
        "embedding.int8.onnx",
        "weights.bin",
        "weights.int8.bin",
    }
    for key in ("preprocessing", "patch_size", "mask_ratio", "errormap", "licence", "provenance"):
        assert key in manifest
    assert manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]


def test_numpy_unpatchify_inverts_the_hf_patch_layout() -> None:
    from skelex_desktop.core.inference.errormap import unpatchify
    from skelex_desktop.core.training.mae import patchify

    pixels = torch.randn(2, 3, 64, 64)
    patches = patchify(pixels, 16).numpy()
    assert np.array_equal(unpatchify(patches, 16, 3), pixels.numpy())


def test_import_declares_a_lowpass_width_or_refuses_a_bad_one(tmp_path) -> None:  # noqa: ANN001
    from skelex_desktop.core.inference.package import PackageError, verify_package
    from skelex_desktop.core.inference.service import MaeRuntime
    from skelex_desktop.core.training.package_writer import ImportOptions, import_model

    import_model(tiny_model(), tmp_path, ImportOptions(name="lp", lowpass_sigma=1.5))
    declared = verify_package(tmp_path / "lp")
    assert declared.errormap["lowpass_sigma"] == 1.5
    assert "lowpass_sigma" not in verify_package(tiny_package_root() / "tiny").errormap
    pixels = np.random.default_rng(0).normal(1000, 100, (80, 96)).astype(np.float32)
    plain = MaeRuntime(verify_package(tiny_package_root() / "tiny")).error_map(pixels)
    blurred = MaeRuntime(declared).error_map(pixels)
    assert not np.allclose(plain.model_map, blurred.model_map)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(PackageError, match="low-pass width"):
            import_model(tiny_model(), tmp_path, ImportOptions(name=f"bad{bad}", lowpass_sigma=bad))
        assert not (tmp_path / f"bad{bad}").exists()
