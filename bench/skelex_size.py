"""Benchmark: the runtime at SKELEX size (issue #20). A ViT-L/16 MAE saved by `transformers`
(random weights, `save_pretrained`) goes through `model import --int8` in a subprocess, then
one `errormap` runs in a fresh subprocess (cold: a new process loads and checks the package).
Printed, each as a ratio to its target (<= 1 meets it): the import's wall time and peak
resident memory, the package's size on disk, the cold map's wall time and peak resident memory.

`--code DIR` runs the commands from another checkout (e.g. the previous commit, unpacked with
`git archive`), so a before and an after figure are measured on the same machine, close
together. Peak resident memory is the child's own `ru_maxrss` (os.wait4). On a machine shared
with other jobs the wall times follow the load, so each child's CPU time (user + system, all
its threads) and the load average around it are printed too: CPU time hardly depends on the
load. `--maps N` runs the cold map N times (each in a fresh process) and reports the median.

Usage: python bench/skelex_size.py [--code DIR] [--keep DIR] [--maps N] [--skip-import]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GB = 1e9
TARGETS = {  # issue #20
    "package size (GB)": 1.7,
    "import peak RSS (GB)": 4.0,
    "cold first map (s)": 6.0,
    "cold map peak RSS (GB)": 2.5,
}
VIT_L = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    decoder_hidden_size=512,
    decoder_num_hidden_layers=8,
    decoder_num_attention_heads=16,
    decoder_intermediate_size=2048,
    image_size=224,
    patch_size=16,
)


def save_vit_l(folder: Path) -> None:
    """A ViT-L/16 MAE with random weights, written by transformers' `save_pretrained`."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**VIT_L))
    model.save_pretrained(folder)


def write_radiograph(path: Path) -> None:
    """A synthetic 1024 x 1024 radiograph (SynthMSK) as a 16-bit PNG."""
    import cv2
    import numpy as np

    from skelex_desktop.core.synth import generate_image

    pixels = generate_image(1, 0, size=1024, abnormal=True).monochrome2()
    cv2.imwrite(str(path), np.clip(pixels, 0, 65535).astype(np.uint16))


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """(wall seconds, peak resident GB, CPU seconds) of one child process; prints the load
    average (1, 5, 15 minutes) before and after it."""
    before = load()
    start = time.perf_counter()
    child = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert child.stdout is not None
    output = child.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({child.returncode}):\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"  {args[5] if len(args) > 5 else args[-1]}: {seconds:.1f} s wall, {cpu:.1f} s CPU, "
        f"peak RSS {usage.ru_maxrss * 1024 / GB:.2f} GB; load average {before} -> {load()}"
    )
    return seconds, usage.ru_maxrss * 1024 / GB, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, help="checkout to run the commands from")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: temp)")
    parser.add_argument("--maps", type=int, default=1, help="cold maps to run (median)")
    parser.add_argument(
        "--skip-import", action="store_true", help="reuse the package already in --keep DIR"
    )
    args = parser.parse_args()

    env = dict(os.environ)
    if args.code is not None:
        env["PYTHONPATH"] = str(args.code.resolve())
    work = args.keep or Path(tempfile.mkdtemp(prefix="skelex-size-"))
    work.mkdir(parents=True, exist_ok=True)
    where = subprocess.run(  # children run in `work`: the current folder would shadow --code
        [sys.executable, "-c", "import skelex_desktop; print(skelex_desktop.__file__)"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"code: {where}; {os.cpu_count()} CPUs (the map uses the default: all of them)")
    try:
        hf, data, image = work / "hf", work / "data", work / "image.png"
        if not (hf / "config.json").is_file():
            save_vit_l(hf)
        source = sum(p.stat().st_size for p in hf.iterdir())
        print(f"transformers ViT-L MAE (save_pretrained): {source / GB:.2f} GB")
        write_radiograph(image)
        cli = [sys.executable, "-m", "skelex_desktop", "--data-dir", str(data)]
        package = data / "models" / "skelex-vitl"
        figures: dict[str, float] = {}
        if not args.skip_import:
            shutil.rmtree(data, ignore_errors=True)
            seconds, peak, cpu = run_measured(
                [*cli, "model", "import", str(hf), "--name", "skelex-vitl", "--int8"], env, work
            )
            print(f"model import --int8: {seconds:.0f} s ({cpu:.0f} s CPU), peak RSS {peak:.2f} GB")
            figures["import peak RSS (GB)"] = peak
        files = {p.name: p.stat().st_size for p in sorted(package.rglob("*")) if p.is_file()}
        print("package files: " + ", ".join(f"{n} {b / GB:.3f} GB" for n, b in files.items()))
        figures["package size (GB)"] = sum(files.values()) / GB
        maps = []
        for _ in range(max(1, args.maps)):
            shutil.rmtree(data / "cache", ignore_errors=True)  # cold: nothing cached
            maps.append(
                run_measured(
                    [
                        *cli,
                        "errormap",
                        str(image),
                        "--model",
                        "skelex-vitl",
                        "--out",
                        str(work / "map.npy"),
                    ],
                    env,
                    work,
                )
            )
        figures["cold first map (s)"] = statistics.median(m[0] for m in maps)
        figures["cold map peak RSS (GB)"] = max(m[1] for m in maps)
        print(f"cold first map: median CPU {statistics.median(m[2] for m in maps):.1f} s")
        for name, value in figures.items():
            target = TARGETS[name]
            verdict = "meets" if value <= target else "MISSES"
            print(f"{name}: {value:.2f} / target {target:g} = {value / target:.2f} ({verdict})")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
