"""Reading and writing Hugging Face `ViTMAEForPreTraining` folders without transformers.

A folder holds `config.json` and the weights as `model.safetensors` (or a sharded
`model.safetensors.index.json`) or a legacy `pytorch_model.bin`, read with
`torch.load(weights_only=True)` so no pickled code ever runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from skelex_desktop.core.training.mae import MaskedAutoencoder, sincos_position_embedding
from skelex_desktop.core.training.mae_config import CheckpointError, MaeConfig

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"

# Older layouts -> current HF names (applied in order).
_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"^vit\.encoder\.layer\.(\d+)\.", r"vit.layers.\1."),
        (r"^decoder\.decoder_encoder\.layer\.(\d+)\.", r"decoder.decoder_layers.\1."),
        (r"\.attention\.attention\.query\.", ".attention.q_proj."),
        (r"\.attention\.attention\.key\.", ".attention.k_proj."),
        (r"\.attention\.attention\.value\.", ".attention.v_proj."),
        (r"\.attention\.output\.dense\.", ".attention.o_proj."),
        (r"\.intermediate\.dense\.", ".mlp.fc1."),
        (r"\.output\.dense\.", ".mlp.fc2."),
    )
)


def normalise_key(key: str) -> str:
    """A parameter name from any HF ViTMAE layout (4.x or 5.x) in this module's layout."""
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def read_config(folder: Path) -> MaeConfig:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} has no config.json (not a Hugging Face model folder)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return MaeConfig.from_hf(data)


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The raw state dict of a checkpoint folder (safetensors preferred)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if (folder / SAFETENSORS).is_file():
        return load_file(folder / SAFETENSORS)
    if (folder / SAFETENSORS_INDEX).is_file():
        index = json.loads((folder / SAFETENSORS_INDEX).read_text(encoding="utf-8"))
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index.get("weight_map", {}).values())):
            state.update(load_file(folder / shard))
        return state
    if (folder / PYTORCH_BIN).is_file():
        try:
            saved = torch.load(folder / PYTORCH_BIN, map_location="cpu", weights_only=True)
        except Exception as exc:  # the unpickler refuses anything but tensors and containers
            raise CheckpointError(f"cannot read {PYTORCH_BIN} safely: {exc}") from exc
        return saved.get("state_dict", saved) if isinstance(saved, dict) else saved
    raise CheckpointError(
        f"{folder} has no weights ({SAFETENSORS}, {SAFETENSORS_INDEX} or {PYTORCH_BIN})"
    )


def load_state(model: MaskedAutoencoder, raw: dict[str, torch.Tensor]) -> None:
    """Load `raw` into `model` strictly, after key normalisation; explain any mismatch."""
    state = {normalise_key(k): v for k, v in raw.items()}
    if not any(k.startswith("decoder.") for k in state):
        raise CheckpointError(
            "the checkpoint has no decoder weights: it is a ViTMAEModel (encoder only), "
            "but error maps need ViTMAEForPreTraining"
        )
    cfg = model.config
    # Position tables are fixed sin-cos; a checkpoint without them gets the standard ones.
    state.setdefault(
        "vit.embeddings.position_embeddings", sincos_position_embedding(cfg.grid, cfg.hidden_size)
    )
    state.setdefault(
        "decoder.decoder_pos_embed", sincos_position_embedding(cfg.grid, cfg.decoder_hidden_size)
    )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            "the weights do not fit config.json: "
            f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
            f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"weight {key} has shape {tuple(value.shape)}, config.json implies "
                f"{tuple(expected[key].shape)}"
            )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def load_checkpoint(folder: str | Path) -> MaskedAutoencoder:
    """The model of a HF `ViTMAEForPreTraining` folder, in eval mode, fp32."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder")
    model = MaskedAutoencoder(read_config(folder))
    load_state(model, read_weights(folder))
    return model.eval()


def save_checkpoint(model: MaskedAutoencoder, folder: str | Path) -> Path:
    """Write `config.json` + `model.safetensors` (HF layout) that this module and HF both load."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / SAFETENSORS), metadata={"format": "pt"})
    (folder / "config.json").write_text(
        json.dumps(model.config.to_hf(), indent=2, sort_keys=True), encoding="utf-8"
    )
    return folder
