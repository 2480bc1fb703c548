"""Throughput of SynthMSK at 1024 x 1024: single process and the parallel generator.

Run with `.venv/bin/python bench/synth.py [--n N] [--size PX] [--workers W]`. Both numbers are
end to end (render + DICOM + mask files); the target is 10 images/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from skelex_desktop.core.synth import SynthConfig, generate_dataset, generate_image

TARGET = 10.0


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    generate_image(0, 0, size=args.size)  # warm-up (imports, caches)
    t = time.perf_counter()
    for i in range(args.n // 2):
        generate_image(1, i, size=args.size)
    in_memory = _rate(args.n // 2, time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SynthConfig(n=args.n // 2, seed=2, size=args.size, workers=1)
        t = time.perf_counter()
        generate_dataset(Path(tmp) / "single", cfg)
        single = _rate(cfg.n, time.perf_counter() - t)
        cfg = SynthConfig(n=args.n, seed=3, size=args.size, workers=args.workers)
        t = time.perf_counter()
        generate_dataset(Path(tmp) / "parallel", cfg)
        parallel = _rate(cfg.n, time.perf_counter() - t)

    print(f"size {args.size}x{args.size}, {os.cpu_count()} CPUs")
    print(f"in memory, 1 process     : {in_memory:6.2f} images/s")
    print(f"to disk, 1 process       : {single:6.2f} images/s  ({single / TARGET:.2f}x target)")
    print(
        f"to disk, {args.workers} workers        : {parallel:6.2f} images/s  "
        f"({parallel / TARGET:.2f}x target of {TARGET:.0f} images/s)"
    )


if __name__ == "__main__":
    main()
