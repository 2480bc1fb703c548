"""`finetune`: partial fine-tuning of the last N encoder blocks, imported as a new package."""

from __future__ import annotations

import argparse

from skelex_desktop.commands.common import AddCommand, CliError, emit, open_ws
from skelex_desktop.commands.full_edition import require_full_edition


def cmd_finetune(args: argparse.Namespace) -> int:
    require_full_edition("Fine-tuning (`finetune`)")
    from skelex_desktop.core.inference.package import PackageError
    from skelex_desktop.core.ingest.pixels import IngestError
    from skelex_desktop.core.progress import TextProgress
    from skelex_desktop.core.training.finetune import FinetuneError, FinetuneOptions, finetune
    from skelex_desktop.core.training.mae_config import CheckpointError

    if args.blocks < 1:
        raise CliError(f"--blocks must be at least 1 (got {args.blocks})", code=2)
    if args.epochs < 1:
        raise CliError(f"--epochs must be at least 1 (got {args.epochs})", code=2)
    options = FinetuneOptions(
        task=args.task,
        blocks=args.blocks,
        epochs=args.epochs,
        seed=args.seed,
        model=getattr(args, "model", None),
        name=getattr(args, "name", None),
        replace=bool(getattr(args, "replace", False)),
    )
    ws = open_ws(args)
    progress = TextProgress()
    try:
        result = finetune(ws.db, ws.settings, options, progress)
    except (FinetuneError, PackageError, CheckpointError, IngestError, FileExistsError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        progress.finish()
        ws.close()
    record = result.record
    metrics = record.get("validation", {})
    shown = [
        f"{key} {metrics[key]:.3f}"
        for key in ("auroc", "balanced_accuracy", "f1_macro", "nll", "mae")
        if metrics.get(key) is not None
    ]
    text = (
        f"fine-tuned {record['blocks']} block(s) of {record['base_package']} for "
        f"'{args.task}' (best epoch {record['best_epoch']} of {len(record['history'])}); "
        f"package {result.name} imported\n  validation "
        f"({record['split']['validation_images']} images): " + ", ".join(shown)
    )
    emit(args, result.to_json(), text)
    return 0


def register(add: AddCommand) -> None:
    ft = add(
        "finetune",
        cmd_finetune,
        "fine-tune the last N encoder blocks on confirmed labels (new model package)",
    )
    ft.add_argument("--task", required=True, metavar="TASK", help="the classification task")
    ft.add_argument(
        "--blocks",
        type=int,
        required=True,
        metavar="N",
        help="number of last encoder blocks to train (with the final norm)",
    )
    ft.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="at most this many epochs (early stopping on validation loss; default 10)",
    )
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--model", metavar="NAME", help="base model package (default: active)")
    ft.add_argument("--name", metavar="NAME", help="package name (default: <base>-ft-<task>-<N>)")
    ft.add_argument("--replace", action="store_true", help="replace a package of that name")
    ft.add_argument("--json", action="store_true")
