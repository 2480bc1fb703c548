"""MAE pretraining on SynthMSK normal radiographs: seeded, resumable, cancellable.

A pool of normal synthetic images is rendered once (min-max to 8 bit, the reference
preprocessing) and cached in the run folder; each step draws a seeded batch with random
resized crops and flips, resized to the model input and ImageNet-normalised. Checkpoints
(model + optimiser + step) are written atomically every `checkpoint_every` steps, so a run
stopped by time, cancellation or a crash resumes where it left off. The result is saved as a
Hugging Face folder (`hf/config.json` + `hf/model.safetensors`) ready for `model import`.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skelex_desktop.core.inference.preprocess import IMAGENET_MEAN, IMAGENET_STD
from skelex_desktop.core.progress import Progress, check
from skelex_desktop.core.training.checkpoint import save_checkpoint
from skelex_desktop.core.training.mae import MaskedAutoencoder
from skelex_desktop.core.training.mae_config import MaeConfig
from skelex_desktop.core.training.pool import render_normal_chunk

DEMO_MODEL = MaeConfig(
    image_size=224,
    patch_size=16,
    num_channels=3,
    hidden_size=192,
    num_hidden_layers=6,
    num_attention_heads=3,
    intermediate_size=768,
    decoder_hidden_size=128,
    decoder_num_hidden_layers=4,
    decoder_num_attention_heads=4,
    decoder_intermediate_size=512,
    layer_norm_eps=1e-6,
)
CHECKPOINT = "checkpoint.pt"
POOL = "pool.npy"
LOG = "log.jsonl"
SUMMARY = "summary.json"
TRAINING_RECORD = "skelex_training.json"


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (stored with its checkpoints)."""

    model: MaeConfig = field(default_factory=lambda: DEMO_MODEL)
    pool_size: int = 5000
    synth_size: int = 256
    batch_size: int = 64
    lr: float = 7.5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    total_steps: int = 1200
    max_minutes: float | None = None
    seed: int = 0
    bf16: bool = True
    checkpoint_every: int = 50
    crop_scale: tuple[float, float] = (0.5, 1.0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"] = self.model.to_hf()
        return data


@dataclass
class PretrainResult:
    hf_dir: Path
    steps: int
    images_seen: int
    seconds: float
    final_loss: float
    device: str
    finished: bool


POOL_CHUNK = 50  # images per rendering task


def render_pool(cfg: PretrainConfig, progress: Progress | None, workers: int = 1) -> np.ndarray:
    """[N, S, S] uint8 normal SynthMSK radiographs (bone bright, per-image min-max).

    Every image depends only on (seed, index), so `workers` processes render the same pool
    as one (a GPU machine's many cores make the pool in seconds rather than minutes)."""
    n, size = cfg.pool_size, cfg.synth_size
    pool = np.empty((n, size, size), dtype=np.uint8)
    chunks = [(start, min(start + POOL_CHUNK, n)) for start in range(0, n, POOL_CHUNK)]
    if progress:
        progress.set_status("rendering normal SynthMSK images")
        progress.set_total(n)
    if workers <= 1 or len(chunks) == 1:
        for start, stop in chunks:
            check(progress)
            pool[start:stop] = render_normal_chunk(cfg.seed, start, stop, size)
            if progress:
                progress.advance(stop - start)
        return pool
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=get_context("spawn")) as ex:
        pending = {
            ex.submit(render_normal_chunk, cfg.seed, start, stop, size): (start, stop)
            for start, stop in chunks
        }
        try:
            while pending:
                check(progress)
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    start, stop = pending.pop(future)
                    pool[start:stop] = future.result()
                    if progress:
                        progress.advance(stop - start)
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
    return pool


def load_or_render_pool(
    run_dir: Path, cfg: PretrainConfig, progress: Progress | None, workers: int = 1
) -> np.ndarray:
    path = run_dir / POOL
    if path.is_file():
        pool = np.load(path, mmap_mode="r")
        if pool.shape == (cfg.pool_size, cfg.synth_size, cfg.synth_size):
            return np.asarray(pool)
    pool = render_pool(cfg, progress, workers)
    tmp = path.with_name(POOL + ".tmp.npy")
    np.save(tmp, pool)
    os.replace(tmp, path)
    return pool


def sample_batch(pool: np.ndarray, cfg: PretrainConfig, step: int) -> torch.Tensor:
    """The seeded, augmented, normalised batch of `step`: [B, 3, H, W] float32."""
    import cv2

    rng = np.random.default_rng([cfg.seed, step, 11])
    size = cfg.model.image_size
    out = np.empty((cfg.batch_size, size, size), dtype=np.float32)
    for b, idx in enumerate(rng.integers(0, len(pool), cfg.batch_size)):
        img = pool[idx]
        side = img.shape[0]
        scale = rng.uniform(*cfg.crop_scale)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        h = min(side, round(side * math.sqrt(scale / aspect)))
        w = min(side, round(side * math.sqrt(scale * aspect)))
        y, x = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
        crop = cv2.resize(img[y : y + h, x : x + w], (size, size), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[b] = crop.astype(np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, np.float32)[None, :, None, None]
    std = np.asarray(IMAGENET_STD, np.float32)[None, :, None, None]
    return torch.from_numpy((out[:, None] - mean) / std)


def learning_rate(cfg: PretrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to zero at `total_steps`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps))
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a resumed run must share with its checkpoint (the time limit may differ)."""
    return {k: v for k, v in config.items() if k != "max_minutes"}


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _optimizer(model: MaskedAutoencoder, cfg: PretrainConfig) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith("_token") else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def pretrain(
    run_dir: str | Path,
    cfg: PretrainConfig,
    progress: Progress | None = None,
    threads: int | None = None,
    workers: int = 1,
) -> PretrainResult:
    """Train (or resume) the MAE of `cfg` in `run_dir`; returns where the HF folder is.
    `workers` processes render the image pool (when it is not cached yet)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pool = load_or_render_pool(run_dir, cfg, progress, workers)

    torch.manual_seed(cfg.seed)
    model = MaskedAutoencoder(cfg.model)
    model.init_weights(torch.Generator().manual_seed(cfg.seed))
    model.to(device).train()
    optimizer = _optimizer(model, cfg)
    step, seen, seconds = 0, 0, 0.0
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if _identity(state["config"]) != _identity(cfg.to_json()):
            raise ValueError(f"{ckpt_path} belongs to a run with other settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, seen, seconds = state["step"], state["images_seen"], state["seconds"]

    if progress:
        progress.set_total(cfg.total_steps)
        progress.set_status("pretraining")
        progress.advance(step)
    started = time.monotonic() - seconds
    loss_value = float("nan")
    log = (run_dir / LOG).open("a", encoding="utf-8")
    try:
        while step < cfg.total_steps:
            check(progress)
            if cfg.max_minutes is not None and time.monotonic() - started > cfg.max_minutes * 60:
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step)
            batch = sample_batch(pool, cfg, step).to(device)
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            noise = torch.rand(batch.shape[0], cfg.model.num_patches, generator=gen).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = model.loss(batch, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            seen += batch.shape[0]
            loss_value = float(loss.detach())
            elapsed = time.monotonic() - started
            log.write(json.dumps({"step": step, "loss": loss_value, "seconds": elapsed}) + "\n")
            log.flush()
            if progress:
                progress.advance(1, current=f"loss {loss_value:.4f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.total_steps:
                log.flush()
                _save_atomic(
                    {
                        "config": cfg.to_json(),
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "step": step,
                        "images_seen": seen,
                        "seconds": elapsed,
                    },
                    ckpt_path,
                )
    finally:
        log.close()
    seconds = time.monotonic() - started
    hf_dir = save_checkpoint(model.cpu().eval(), run_dir / "hf")
    result = PretrainResult(
        hf_dir, step, seen, seconds, loss_value, str(device), step >= cfg.total_steps
    )
    summary = {
        **asdict(result),
        "hf_dir": str(hf_dir),
        "config": cfg.to_json(),
        "threads": torch.get_num_threads(),
        "images_per_second": seen / max(seconds, 1e-9),
    }
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    # travels with the weights: `model import` records it as the package's training provenance
    (hf_dir / TRAINING_RECORD).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return result
