"""A ViT masked autoencoder in plain torch, state-dict compatible with HF `ViTMAEForPreTraining`.

Parameter names follow the current Hugging Face layout (`vit.layers.N.attention.q_proj`, ...);
`checkpoint.normalise_keys` maps the older layouts onto it. Masking follows HF exactly: patches
are sorted by `noise` and the lowest `int(L * (1 - mask_ratio))` stay visible; `mask` is 1 where
a patch was hidden. Importing this module imports torch: only `core/training` may do that.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from skelex_desktop.core.training.mae_config import MaeConfig


class QuickGelu(nn.Module):
    """x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def activation(name: str) -> nn.Module:
    """A fresh activation module for a HF `hidden_act` name."""
    if name == "quick_gelu":
        return QuickGelu()
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    return {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}[name]()


def sincos_position_embedding(grid: int, dim: int) -> torch.Tensor:
    """[1, grid*grid + 1, dim] fixed 2-D sin-cos table (zero row for the CLS token).

    Layout per position: [sin(col), cos(col), sin(row), cos(row)] over dim/4 frequencies each,
    patches in row-major order: the layout MAE checkpoints were trained with.
    """
    quarter = dim // 4
    omega = 1.0 / 10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(
        torch.arange(grid, dtype=torch.float64),
        torch.arange(grid, dtype=torch.float64),
        indexing="ij",
    )
    col_angles = cols.reshape(-1, 1) * omega
    row_angles = rows.reshape(-1, 1) * omega
    table = torch.cat(
        [col_angles.sin(), col_angles.cos(), row_angles.sin(), row_angles.cos()], dim=1
    )
    table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), table], dim=0)
    return table.unsqueeze(0).float()


class Attention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections (HF key names)."""

    def __init__(self, width: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width, bias=qkv_bias)
        self.k_proj = nn.Linear(width, width, bias=qkv_bias)
        self.v_proj = nn.Linear(width, width, bias=qkv_bias)
        self.o_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        shape = (batch, length, self.heads, width // self.heads)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, width))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int, act: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, width: int, heads: int, hidden: int, cfg: MaeConfig) -> None:
        super().__init__()
        self.attention = Attention(width, heads, cfg.qkv_bias)
        self.layernorm_before = nn.LayerNorm(width, eps=cfg.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(width, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(width, hidden, cfg.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm_before(x))
        return x + self.mlp(self.layernorm_after(x))


class PatchEmbeddings(nn.Module):
    def __init__(self, cfg: MaeConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            cfg.num_channels, cfg.hidden_size, kernel_size=cfg.patch_size, stride=cfg.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(pixel_values).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    def __init__(self, cfg: MaeConfig) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
        self.patch_embeddings = PatchEmbeddings(cfg)
        self.position_embeddings = nn.Parameter(
            sincos_position_embedding(cfg.grid, cfg.hidden_size), requires_grad=False
        )


class Encoder(nn.Module):
    """`vit.*`: patch embedding, masking, transformer blocks, final layer norm."""

    def __init__(self, cfg: MaeConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(
            Block(cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, cfg)
            for _ in range(cfg.num_hidden_layers)
        )
        self.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Patch tokens with their position embeddings, [B, L, D]."""
        pos = self.embeddings.position_embeddings
        return self.embeddings.patch_embeddings(pixel_values) + pos[:, 1:, :]

    def run(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prepend CLS, run the blocks and the final norm: [B, 1 + N, D]."""
        cls = self.embeddings.cls_token + self.embeddings.position_embeddings[:, :1, :]
        x = torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        for layer in self.layers:
            x = layer(x)
        return self.layernorm(x)


class Decoder(nn.Module):
    """`decoder.*`: fills hidden patches with the mask token and predicts patch pixels."""

    def __init__(self, cfg: MaeConfig) -> None:
        super().__init__()
        width = cfg.decoder_hidden_size
        self.decoder_embed = nn.Linear(cfg.hidden_size, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_pos_embed = nn.Parameter(
            sincos_position_embedding(cfg.grid, width), requires_grad=False
        )
        self.decoder_layers = nn.ModuleList(
            Block(width, cfg.decoder_num_attention_heads, cfg.decoder_intermediate_size, cfg)
            for _ in range(cfg.decoder_num_hidden_layers)
        )
        self.decoder_norm = nn.LayerNorm(width, eps=cfg.layer_norm_eps)
        self.decoder_pred = nn.Linear(width, cfg.patch_dim)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(latent)
        batch, seen, width = x.shape
        hidden = ids_restore.shape[1] + 1 - seen
        patches = torch.cat([x[:, 1:, :], self.mask_token.expand(batch, hidden, width)], dim=1)
        index = ids_restore.unsqueeze(-1).expand(-1, -1, width)
        patches = torch.gather(patches, 1, index)
        x = torch.cat([x[:, :1, :], patches], dim=1) + self.decoder_pos_embed
        for layer in self.decoder_layers:
            x = layer(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]


class MaskedAutoencoder(nn.Module):
    """ViT-MAE with HF `ViTMAEForPreTraining` parameter names and numerics."""

    def __init__(self, cfg: MaeConfig) -> None:
        super().__init__()
        self.config = cfg
        self.vit = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """MAE initialisation: xavier linears and patch projection, N(0, 0.02) tokens."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        proj = self.vit.embeddings.patch_embeddings.projection
        nn.init.xavier_uniform_(proj.weight.view(proj.weight.shape[0], -1), generator=generator)
        if proj.bias is not None:
            nn.init.zeros_(proj.bias)
        nn.init.normal_(self.vit.embeddings.cls_token, std=std, generator=generator)
        nn.init.normal_(self.decoder.mask_token, std=std, generator=generator)

    def mask_from_noise(
        self, noise: torch.Tensor, mask_ratio: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids_keep [B, K], ids_restore [B, L], mask [B, L] float, 1 = hidden)."""
        keep = self.config.len_keep(mask_ratio)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        mask = (ids_restore >= keep).to(noise.dtype)
        return ids_shuffle[:, :keep], ids_restore, mask

    def forward(
        self, pixel_values: torch.Tensor, noise: torch.Tensor, mask_ratio: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction [B, L, P*P*C] in normalised pixel units, mask [B, L])."""
        tokens = self.vit.tokens(pixel_values)
        ids_keep, ids_restore, mask = self.mask_from_noise(noise, mask_ratio)
        index = ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
        latent = self.vit.run(torch.gather(tokens, 1, index))
        return self.decoder(latent, ids_restore), mask

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Image embedding [B, D]: mean of the patch tokens of the unmasked encoder."""
        hidden = self.vit.run(self.vit.tokens(pixel_values))
        return hidden[:, 1:, :].mean(dim=1)

    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, L, P*P*C] in the HF order (row, col, channel within a patch)."""
        return patchify(pixel_values, self.config.patch_size)

    def loss(self, pixel_values: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """HF pretraining loss: per-patch MSE averaged over hidden patches."""
        pred, mask = self(pixel_values, noise)
        target = self.patchify(pixel_values)
        if self.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        per_patch = ((pred.float() - target) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()


def patchify(pixel_values: torch.Tensor, patch: int) -> torch.Tensor:
    batch, channels, height, width = pixel_values.shape
    x = pixel_values.reshape(batch, channels, height // patch, patch, width // patch, patch)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(batch, (height // patch) * (width // patch), patch * patch * channels)


def unpatchify(patches: torch.Tensor, patch: int, channels: int) -> torch.Tensor:
    """Inverse of `patchify` for a square grid."""
    batch, length, _ = patches.shape
    grid = math.isqrt(length)
    x = patches.reshape(batch, grid, grid, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(batch, channels, grid * patch, grid * patch)


class ReconstructionGraph(nn.Module):
    """ONNX export wrapper: (pixel_values, noise) -> (reconstruction, mask)."""

    def __init__(self, model: MaskedAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, pixel_values: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(pixel_values, noise)


class EmbeddingGraph(nn.Module):
    """ONNX export wrapper: pixel_values -> embedding."""

    def __init__(self, model: MaskedAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.embed(pixel_values)
