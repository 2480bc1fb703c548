"""`synth`: synthetic radiographs with ground truth; `synth --demo` also imports them."""

from __future__ import annotations

import argparse
from pathlib import Path

from skelex_desktop.commands.common import AddCommand, CliError, emit, open_ws


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def cmd_synth(args: argparse.Namespace) -> int:
    from skelex_desktop.core.progress import TextProgress

    progress = TextProgress()
    if args.demo:
        from skelex_desktop.core.demo import create_demo_studies

        ws = open_ws(args)
        try:
            report = create_demo_studies(ws, progress=progress)
        finally:
            progress.finish()
            ws.close()
        emit(args, report.to_json(), f"demo studies: {report.summary()}")
        return 0
    if args.out is None or args.n is None:
        raise CliError("synth needs --out DIR and --n N (or --demo)", code=2)
    from skelex_desktop.core.synth import SynthConfig, generate_dataset

    config = SynthConfig(
        n=args.n,
        seed=args.seed,
        abnormal_fraction=args.abnormal_fraction,
        fmt=args.format,
        size=args.size,
    )
    try:
        result = generate_dataset(Path(args.out), config, progress)
    finally:
        progress.finish()
    data = {
        "files": len(result.files),
        "patients": result.n_patients,
        "studies": result.n_studies,
        "ground_truth": str(result.ground_truth_csv),
    }
    emit(
        args,
        data,
        f"wrote {len(result.files)} images ({result.n_patients} patients, "
        f"{result.n_studies} studies) to {args.out}; ground truth: {result.ground_truth_csv}",
    )
    return 0


def register(add: AddCommand) -> None:
    p = add("synth", cmd_synth, "generate synthetic radiographs with ground truth")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--n", type=int, metavar="N", help="number of images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--abnormal-fraction", type=_fraction, default=0.5, metavar="F")
    p.add_argument("--format", choices=["dicom", "png"], default="dicom")
    p.add_argument("--size", type=int, default=1024, metavar="PX", help="image side in pixels")
    p.add_argument(
        "--demo",
        action="store_true",
        help="create the demo studies in the data dir and import them",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
