"""The ViT-MAE configuration, read from and written to a Hugging Face `config.json` dict.

Pure Python (no torch): the package writer and the registry use it too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "quick_gelu", "silu")


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used; the message says why."""


@dataclass(frozen=True)
class MaeConfig:
    """Sizes and options of a ViT-MAE (encoder + decoder), with the HF defaults (ViT-B/16)."""

    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 8
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise CheckpointError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        for width, heads, what in (
            (self.hidden_size, self.num_attention_heads, "encoder"),
            (self.decoder_hidden_size, self.decoder_num_attention_heads, "decoder"),
        ):
            if width % heads:
                raise CheckpointError(f"{what} width {width} is not divisible by {heads} heads")
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise CheckpointError(f"unsupported activation {self.hidden_act!r}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise CheckpointError(f"mask_ratio {self.mask_ratio} must be in [0, 1)")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def patch_dim(self) -> int:
        """Values per patch in the reconstruction: patch_size**2 * num_channels."""
        return self.patch_size * self.patch_size * self.num_channels

    def len_keep(self, mask_ratio: float | None = None) -> int:
        """Visible patches per sample at `mask_ratio` (HF: int(L * (1 - ratio)))."""
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        return int(self.num_patches * (1 - ratio))

    @classmethod
    def from_hf(cls, data: dict[str, Any]) -> MaeConfig:
        """From a HF `config.json` dict; unknown keys are ignored, sizes are validated."""
        model_type = data.get("model_type", "vit_mae")
        if model_type != "vit_mae":
            raise CheckpointError(f"config.json has model_type {model_type!r}, expected 'vit_mae'")
        if "head_dim" in data and data["head_dim"] * data.get(
            "num_attention_heads", 12
        ) != data.get("hidden_size", 768):
            raise CheckpointError("config.json sets a head_dim that does not split hidden_size")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data and data[f.name] is not None:
                value = data[f.name]
                if f.name in ("image_size", "patch_size"):
                    value = _square(value, f.name)
                values[f.name] = value
        return cls(**values)

    def to_hf(self) -> dict[str, Any]:
        """A `config.json` dict that `ViTMAEForPreTraining.from_pretrained` accepts."""
        data = asdict(self)
        data.update(
            model_type="vit_mae",
            architectures=["ViTMAEForPreTraining"],
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        return data


def _square(value: Any, name: str) -> int:
    """An int, or a square [n, n] pair, as an int."""
    if isinstance(value, list | tuple):
        if len(value) != 2 or value[0] != value[1]:
            raise CheckpointError(f"{name} {value} is not square; only square inputs are supported")
        value = value[0]
    return int(value)
