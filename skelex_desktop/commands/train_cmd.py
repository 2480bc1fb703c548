"""`analyze`, `train` and `model-version list|activate`: task heads on the command line."""

from __future__ import annotations

import argparse

from skelex_desktop.commands.common import AddCommand, CliError, emit, needs_action, open_ws
from skelex_desktop.commands.full_edition import require_full_edition


def cmd_analyze(args: argparse.Namespace) -> int:
    from skelex_desktop.core.analysis.pipeline import analyse_images
    from skelex_desktop.core.inference.package import PackageError
    from skelex_desktop.core.inference.service import ErrorMapService
    from skelex_desktop.core.progress import TextProgress

    if args.queue:
        from skelex_desktop.commands.worker_cmd import enqueue_analysis

        return enqueue_analysis(args)
    ws = open_ws(args)
    progress = TextProgress()
    try:
        service = ErrorMapService(ws.settings, args.model)
        ids = None if args.all else [int(i) for i in args.image_ids]
        summary = analyse_images(ws.db, service, ids, progress)
    except (PackageError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        progress.finish()
        ws.close()
    failed = "".join(f"\n  image {k}: {v}" for k, v in summary.failed.items())
    text = (
        f"analysed {summary.analysed} image(s); embeddings: {summary.embedded} computed, "
        f"{summary.embeddings_cached} cached; {summary.head_predictions} head and "
        f"{summary.region_predictions} region-guided prediction(s) added"
        + (f"; {len(summary.failed)} failed{failed}" if summary.failed else "")
    )
    emit(args, summary.to_json(), text)
    return 1 if summary.failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    require_full_edition("Training task heads (`train`)")
    from skelex_desktop.core.analysis.pipeline import refresh_predictions
    from skelex_desktop.core.heads.splits import SplitError
    from skelex_desktop.core.heads.training_job import TrainingError, train_head
    from skelex_desktop.core.heads.training_set import DatasetError
    from skelex_desktop.core.inference.package import PackageError
    from skelex_desktop.core.progress import TextProgress

    ws = open_ws(args)
    progress = TextProgress()
    try:
        result = train_head(
            ws.db,
            ws.settings,
            args.task,
            folds=args.folds,
            seed=args.seed,
            model=args.model,
            progress=progress,
        )
        refreshed = refresh_predictions(ws.db, ws.settings, result.model_version_id, progress)
    except (DatasetError, SplitError, TrainingError, PackageError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        progress.finish()
        ws.close()
    lines = [
        f"trained {result.name} version {result.version} on "
        f"{result.metrics['images']} image(s), {result.predictions} prediction(s) stored"
        + (
            f", {refreshed.region_predictions} region-guided"
            if refreshed is not None and refreshed.region_predictions
            else ""
        )
    ]
    for task, m in result.metrics["cv"].items():
        parts = [
            f"{key} {m[key]:.3f}"
            for key in ("auroc", "balanced_accuracy", "f1_macro", "mae", "ece", "ece_calibrated")
            if m.get(key) is not None
        ]
        lines.append(f"  {task}: " + ", ".join(parts))
    data = result.to_json() | {"refresh": refreshed.to_json() if refreshed else None}
    emit(args, data, "\n".join(lines))
    return 0


def cmd_version_list(args: argparse.Namespace) -> int:
    from skelex_desktop.core.heads.versions import list_versions

    ws = open_ws(args)
    try:
        versions = list_versions(ws.db)
    finally:
        ws.close()
    lines = [
        f"{v.name:<28} {v.version:<10} {'active' if v.active else '      '} "
        f"{v.predictions:6d} predictions  {v.created_at:%Y-%m-%d %H:%M}"
        for v in versions
    ]
    emit(args, [v.to_json() for v in versions], "\n".join(lines) or "no model versions")
    return 0


def cmd_version_activate(args: argparse.Namespace) -> int:
    from skelex_desktop.core.analysis.pipeline import refresh_predictions
    from skelex_desktop.core.heads.versions import VersionError, activate_version
    from skelex_desktop.core.inference.package import PackageError

    ws = open_ws(args)
    try:
        view = activate_version(ws.db, args.name, args.version, ws.settings.reader)
        refreshed = refresh_predictions(ws.db, ws.settings, view.id)
    except (VersionError, PackageError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    added = refreshed.head_predictions if refreshed else 0
    regions = refreshed.region_predictions if refreshed else 0
    emit(
        args,
        view.to_json() | {"predictions_added": added, "region_predictions_added": regions},
        f"{view.name} {view.version} is now active ({added} predictions, {regions} "
        "region-guided, added)",
    )
    return 0


def register(add: AddCommand) -> None:
    an = add("analyze", cmd_analyze, "compute predictions, error maps and embeddings")
    an.add_argument("--model", metavar="NAME", help="model package (default: the active one)")
    an.add_argument("--json", action="store_true")
    an.add_argument(
        "--queue", action="store_true", help="queue the images for `worker`s (PostgreSQL only)"
    )
    group = an.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true")
    group.add_argument("image_ids", nargs="*", default=[], metavar="IMAGE_ID")

    tr = add("train", cmd_train, "train a task head on confirmed labels")
    tr.add_argument(
        "--task",
        required=True,
        metavar="TASK",
        action="append",
        help="task to train; repeat for a multi-head model",
    )
    tr.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--model", metavar="NAME", help="embedding model package (default: active)")
    tr.add_argument("--json", action="store_true")

    mv = add("model-version", needs_action("model-version"), "list and activate model versions")
    actions = mv.add_subparsers(dest="version_command", metavar="ACTION")
    ls = actions.add_parser("list", help="every model version")
    ls.set_defaults(handler=cmd_version_list)
    ls.add_argument("--json", action="store_true")
    act = actions.add_parser("activate", help="make a version active (older = roll back)")
    act.set_defaults(handler=cmd_version_activate)
    act.add_argument("name", metavar="NAME")
    act.add_argument("version", metavar="VERSION")
    act.add_argument("--json", action="store_true")
