"""Benchmark: SKELEX-shaped (ViT-L/16) error map, ours (4 complementary passes in one batched
onnxruntime call) against the reference algorithm (torch eager, 10 random passes one by one),
both measured in this run; plus the fraction of the matmul FLOP floor reached, the int8 copy
with its drift, and the bundled demo model's latency from decoded pixels to map + hotspots.

Random weights: the timings do not depend on training. The ViT-L package (format 2: 1.32 GB,
1.66 GB with int8) is written to a temporary folder and deleted afterwards. The package's
size, import memory and cold first map are measured by bench/skelex_size.py.

Usage: python bench/errormap.py [--threads N] [--repeats R] [--no-int8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHAPES = {
    "vit-l": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        decoder_hidden_size=512,
        decoder_num_hidden_layers=8,
        decoder_num_attention_heads=16,
        decoder_intermediate_size=2048,
    ),
    "tiny": dict(
        hidden_size=192,
        num_hidden_layers=12,
        num_attention_heads=3,
        intermediate_size=768,
        decoder_hidden_size=128,
        decoder_num_hidden_layers=4,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=512,
    ),
}


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(threads: int) -> float:
    """fp32 GEMM throughput (torch/MKL), the ceiling for a transformer forward."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 4096)
    seconds = timed(lambda: a @ b, 5)
    return 2 * 2048 * 2048 * 4096 / seconds / 1e9


def forward_gflop(cfg, mask_ratio: float = 0.75) -> float:  # noqa: ANN001
    """FLOPs (2 per multiply-add) of one MAE forward at `mask_ratio`."""

    def blocks(tokens: int, width: int, mlp: int, layers: int) -> float:
        per = 2 * tokens * (4 * width * width + 2 * width * mlp) + 4 * tokens * tokens * width
        return layers * per

    length = cfg.num_patches
    seen = 1 + cfg.len_keep(mask_ratio)
    total = 2 * length * cfg.patch_dim * cfg.hidden_size  # patch embedding (all patches)
    total += blocks(seen, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers)
    total += 2 * seen * cfg.hidden_size * cfg.decoder_hidden_size
    total += blocks(
        length + 1,
        cfg.decoder_hidden_size,
        cfg.decoder_intermediate_size,
        cfg.decoder_num_hidden_layers,
    )
    total += 2 * (length + 1) * cfg.decoder_hidden_size * cfg.patch_dim
    return total / 1e9


def reference_error_map(model, pixel_values, passes: int = 10):  # noqa: ANN001, ANN201
    """The SKELEX reference algorithm in torch eager: `passes` random masks, one at a time."""
    import torch

    from skelex_desktop.core.training.mae import unpatchify

    cfg = model.config
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    target = (pixel_values * std + mean).clamp(0, 1)
    total = torch.zeros(cfg.image_size, cfg.image_size)
    hits = torch.zeros(cfg.image_size, cfg.image_size)
    with torch.inference_mode():
        for _ in range(passes):
            noise = torch.rand(1, cfg.num_patches)
            recon, mask = model(pixel_values, noise)
            image = (unpatchify(recon, cfg.patch_size, 3) * std + mean).clamp(0, 1)
            pixel_mask = unpatchify(
                mask[..., None].expand(-1, -1, cfg.patch_dim), cfg.patch_size, 3
            )[0, 0]
            total += ((image - target) ** 2).mean(dim=1)[0] * pixel_mask
            hits += pixel_mask
    return torch.where(hits > 0, total / hits.clamp(min=1), torch.zeros_like(total))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="vit-l",
        help="model shape (vit-l = SKELEX; tiny = a quick smoke run)",
    )
    args = parser.parse_args()

    import torch

    from skelex_desktop.core.inference.package import read_manifest
    from skelex_desktop.core.inference.preprocess import Preprocessing, preprocess
    from skelex_desktop.core.inference.service import MaeRuntime
    from skelex_desktop.core.synth import generate_image
    from skelex_desktop.core.training.mae import MaskedAutoencoder
    from skelex_desktop.core.training.mae_config import MaeConfig
    from skelex_desktop.core.training.package_writer import ImportOptions, import_model

    torch.set_num_threads(args.threads)
    ceiling = matmul_gflops(args.threads)
    print(f"threads {args.threads}; fp32 matmul baseline: {ceiling:.0f} GFLOP/s")

    cfg = MaeConfig(**SHAPES[args.shape])
    model = MaskedAutoencoder(cfg)
    model.init_weights(torch.Generator().manual_seed(0))
    model.eval()
    gflop = forward_gflop(cfg)
    print(
        f"{args.shape} MAE forward at 224, mask 0.75: {gflop:.1f} GFLOP "
        "(design note for ViT-L: ~40.6)"
    )

    image = generate_image(1, 0, size=512, abnormal=True).monochrome2()
    prep = Preprocessing()
    x, _ = preprocess(image, prep)
    pixel_values = torch.from_numpy(x)[None]

    t_ref = timed(lambda m=model: reference_error_map(m, pixel_values), args.repeats)
    print(f"reference (torch eager, 10 passes one by one): {t_ref:.2f} s")

    tmp = Path(tempfile.mkdtemp(prefix="skelex-bench-"))
    try:
        start = time.perf_counter()
        import_model(
            model, tmp, ImportOptions(name="bench", int8=not args.no_int8, threads=args.threads)
        )
        print(
            f"export + parity check{' + int8' if not args.no_int8 else ''}: "
            f"{time.perf_counter() - start:.0f} s"
        )
        model = None  # free the torch weights before timing onnxruntime
        manifest = read_manifest(tmp / "bench")
        print(
            f"ONNX vs torch max abs diff: {manifest.data['parity']['max_abs_reconstruction']:.2e}"
        )
        runtime = MaeRuntime(manifest, args.threads)
        t_ours = timed(lambda r=runtime: r.error_map(image), args.repeats)
        floor = 4 * gflop / ceiling
        print(
            f"ours (ORT fp32, 4 complementary passes, 1 batched call): {t_ours:.2f} s "
            f"-> {t_ref / t_ours:.1f}x faster than the reference; "
            f"{floor / t_ours:.0%} of the matmul floor ({floor:.2f} s)"
        )
        if not args.no_int8:
            drift = manifest.data["graphs"]["reconstruction_int8"]["drift"]
            runtime8 = MaeRuntime(manifest, args.threads, int8=True)
            t_int8 = timed(lambda r=runtime8: r.error_map(image), args.repeats)
            map32 = runtime.error_map(image).model_map
            map8 = runtime8.error_map(image).model_map
            map_drift = float(np.linalg.norm(map8 - map32) / max(np.linalg.norm(map32), 1e-12))
            print(
                f"ours (ORT int8): {t_int8:.2f} s -> {t_ref / t_int8:.1f}x the reference, "
                f"{t_ours / t_int8:.1f}x fp32; drift: reconstruction relative L2 "
                f"{drift['reconstruction_relative_l2']:.3f}, error map relative L2 "
                f"{map_drift:.3f} (random weights)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    demo_latency(args.threads, args.repeats)


def demo_latency(threads: int, repeats: int) -> None:
    """The bundled demo model: decoded pixels -> full-resolution map + hotspots + score."""
    from skelex_desktop.core.inference.package import PackageError, verify_package
    from skelex_desktop.core.inference.service import MaeRuntime
    from skelex_desktop.core.resources import bundled_models_dir
    from skelex_desktop.core.synth import generate_image

    try:
        manifest = verify_package(bundled_models_dir() / "skelex-demo")
    except PackageError as exc:
        print(f"demo model: not measured ({exc})")
        return
    runtime = MaeRuntime(manifest, threads)
    for size in (512, 2048):
        pixels = generate_image(2, 0, size=size, abnormal=True).monochrome2()
        seconds = timed(lambda p=pixels: runtime.analyse(p), repeats)
        print(
            f"demo model ({manifest.name}), {size}x{size} decoded pixels -> map + hotspots: "
            f"{seconds * 1000:.0f} ms per image"
        )


if __name__ == "__main__":
    main()
