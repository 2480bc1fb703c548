"""Our torch MAE against transformers' ViTMAEForPreTraining, and checkpoint folder loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from skelex_desktop.core.training.checkpoint import (  # noqa: E402
    PYTORCH_BIN,
    load_checkpoint,
    normalise_key,
    save_checkpoint,
)
from skelex_desktop.core.training.mae import MaskedAutoencoder  # noqa: E402
from skelex_desktop.core.training.mae_config import CheckpointError, MaeConfig  # noqa: E402

HF_SMALL = dict(
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=96,
    decoder_hidden_size=40,
    decoder_num_hidden_layers=2,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=80,
    image_size=48,
    patch_size=8,
    hidden_act="gelu",
)


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    model = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**HF_SMALL)).eval()
    with torch.no_grad():  # HF leaves the fixed position tables at zero when built from a config
        grid = HF_SMALL["image_size"] // HF_SMALL["patch_size"]
        from skelex_desktop.core.training.mae import sincos_position_embedding

        model.vit.embeddings.position_embeddings.copy_(
            sincos_position_embedding(grid, HF_SMALL["hidden_size"])
        )
        model.decoder.decoder_pos_embed.copy_(
            sincos_position_embedding(grid, HF_SMALL["decoder_hidden_size"])
        )
    return model


def _inputs(batch: int = 3, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch, 3, 48, 48, generator=gen)
    return pixels, torch.rand(batch, 36, generator=gen)


def _assert_same(hf, ours) -> None:
    pixels, noise = _inputs()
    with torch.no_grad():
        expected = hf(pixel_values=pixels, noise=noise)
        recon, mask = ours(pixels, noise)
    assert (expected.logits - recon).abs().max().item() <= 1e-4
    assert torch.equal(expected.mask, mask)


def test_state_dict_loads_strictly_and_matches_hf(hf_model) -> None:
    ours = MaskedAutoencoder(MaeConfig.from_hf(hf_model.config.to_dict())).eval()
    ours.load_state_dict(hf_model.state_dict(), strict=True)
    _assert_same(hf_model, ours)
    assert 1 - ours.config.mask_ratio == pytest.approx(0.25)
    assert int(_inputs()[1].shape[1] * 0.25) == int((ours(*_inputs())[1] == 0).sum(1)[0])


def test_loads_save_pretrained_safetensors_folder(hf_model, tmp_path: Path) -> None:
    hf_model.save_pretrained(tmp_path / "hf")
    _assert_same(hf_model, load_checkpoint(tmp_path / "hf"))


def test_loads_legacy_pytorch_bin_folder(hf_model, tmp_path: Path) -> None:
    folder = tmp_path / "legacy"
    folder.mkdir()
    legacy = {}
    for key, value in hf_model.state_dict().items():  # transformers 4.x names
        key = key.replace("vit.layers.", "vit.encoder.layer.")
        for new, old in (
            ("q_proj", "attention.query"),
            ("k_proj", "attention.key"),
            ("v_proj", "attention.value"),
            ("o_proj", "output.dense"),
            ("mlp.fc1", "intermediate.dense"),
            ("mlp.fc2", "output.dense"),
        ):
            key = key.replace(new, old)
        legacy[key] = value.clone()
    assert "vit.encoder.layer.0.attention.attention.query.weight" in legacy
    assert normalise_key("vit.encoder.layer.0.attention.attention.query.weight") == (
        "vit.layers.0.attention.q_proj.weight"
    )
    torch.save(legacy, folder / PYTORCH_BIN)
    (folder / "config.json").write_text(json.dumps(hf_model.config.to_dict()), encoding="utf-8")
    _assert_same(hf_model, load_checkpoint(folder))


def test_our_saved_folder_loads_in_transformers(tmp_path: Path) -> None:
    cfg = MaeConfig.from_hf({**HF_SMALL, "model_type": "vit_mae"})
    ours = MaskedAutoencoder(cfg)
    ours.init_weights(torch.Generator().manual_seed(3))
    save_checkpoint(ours.eval(), tmp_path / "ours")
    hf = transformers.ViTMAEForPreTraining.from_pretrained(tmp_path / "ours").eval()
    _assert_same(hf, ours)


def test_mismatched_or_encoder_only_checkpoints_are_refused(hf_model, tmp_path: Path) -> None:
    hf_model.save_pretrained(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["hidden_size"] = 96
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape|do not fit"):
        load_checkpoint(tmp_path / "hf")
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    state = {k: v for k, v in hf_model.state_dict().items() if k.startswith("vit.")}
    torch.save(state, encoder / PYTORCH_BIN)
    (encoder / "config.json").write_text(json.dumps(hf_model.config.to_dict()))
    with pytest.raises(CheckpointError, match="no decoder"):
        load_checkpoint(encoder)
    with pytest.raises(CheckpointError, match="config.json"):
        load_checkpoint(tmp_path)
