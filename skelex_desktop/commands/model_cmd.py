"""`model list|import|verify|trust|calibrate`, `errormap` and `pretrain`: the SKELEX runtime on
the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from skelex_desktop.commands.common import AddCommand, CliError, emit, needs_action, open_ws
from skelex_desktop.commands.full_edition import require_full_edition


def _settings(args: argparse.Namespace):  # noqa: ANN202 - Settings is imported lazily
    from skelex_desktop.core.settings import load_settings

    return load_settings(data_dir=args.data_dir, db_url=args.db)


def _registry(args: argparse.Namespace):  # noqa: ANN202 - Registry is imported lazily
    from skelex_desktop.core.inference.registry import Registry

    return Registry.from_settings(_settings(args))


def cmd_model_list(args: argparse.Namespace) -> int:
    packages = _registry(args).list_packages(verify=True)
    rows = [p.to_json() for p in packages]
    lines = [
        f"{p.name:<24} {p.version:<10} {p.size_bytes / 1e6:8.1f} MB  "
        + (
            f"verified, trusted ({p.trust})"
            if p.verified
            else ("REFUSED: " if p.trust is None else "NOT VERIFIED: ") + (p.problem or "")
        )
        + f"  [{p.origin}]"
        for p in packages
    ]
    emit(args, rows, "\n".join(lines) if lines else "no model packages")
    return 0


def cmd_model_verify(args: argparse.Namespace) -> int:
    from skelex_desktop.core.inference.package import PackageError

    registry = _registry(args)
    try:
        package = registry.verify(args.name)
    except PackageError as exc:
        raise CliError(str(exc)) from exc
    emit(
        args,
        package.to_json(),
        f"{package.name} {package.version}: all {package.file_count} files verified "
        f"({package.path}); manifest trusted ({package.trust})",
    )
    return 0


def cmd_model_trust(args: argparse.Namespace) -> int:
    from skelex_desktop.core.inference.package import PackageError
    from skelex_desktop.core.inference.registry import Registry

    ws = open_ws(args)
    try:
        registry = Registry.from_settings(ws.settings)
        try:
            record, new = registry.trust_package(args.name, ws.db, ws.settings.reader)
        except PackageError as exc:
            raise CliError(str(exc)) from exc
    finally:
        ws.close()
    data = {**record.to_json(), "new": new, "store": str(registry.trust.path)}
    data.pop("outline", None)
    if new:
        text = (
            f"trusted {args.name}: manifest sha256 {record.sha256} recorded in "
            f"{registry.trust.path} (audit event model.trust by {record.by})"
        )
    else:
        text = f"{args.name} is already trusted ({record.describe()}); nothing was changed"
    emit(args, data, text)
    return 0


def cmd_model_import(args: argparse.Namespace) -> int:
    require_full_edition("Importing a checkpoint (`model import`)")
    from skelex_desktop.core.inference.package import PackageError
    from skelex_desktop.core.inference.trust import TrustStore
    from skelex_desktop.core.progress import TextProgress
    from skelex_desktop.core.training.mae_config import CheckpointError
    from skelex_desktop.core.training.package_writer import ImportOptions, import_checkpoint

    settings = _settings(args)
    models_dir = Path(args.models_dir) if args.models_dir else settings.data_dir / "models"
    options = ImportOptions(
        name=args.name,
        int8=args.int8,
        resize=args.resize,
        version=args.version,
        licence=args.licence,
        calibrate_synth=args.calibrate_synth,
        lowpass_sigma=args.lowpass_sigma,
        model_card=Path(args.model_card) if args.model_card else None,
        threads=settings.inference_threads,
        replace=args.replace,
    )
    progress = TextProgress()
    try:
        manifest = import_checkpoint(
            Path(args.hf_dir),
            models_dir,
            options,
            progress,
            TrustStore.for_data_dir(settings.data_dir),  # written by the app: trusted
        )
    except (CheckpointError, PackageError, FileExistsError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        progress.finish()
    target = models_dir / args.name
    emit(args, manifest, f"imported {args.hf_dir} as {args.name} into {target}")
    return 0


def _specificity(text: str) -> float:
    """argparse type: a fraction strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (e.g. 0.95)")
    return value


def _threshold(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def _calibration_text(result) -> str:  # noqa: ANN001 - UserCalibration is imported lazily
    before, after = result.before, result.after
    record = result.manifest["errormap"]["calibration"]
    where = "copy of " + result.base if result.copied else "user package"
    lines = [
        f"calibrated {result.name} ({where}, {result.folder}) on {result.images} normal "
        f"image(s) from {len(result.files)} file(s)"
    ]
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} path(s):")
        lines += [f"  {s.path}: {s.reason}" for s in result.skipped]
    lines += [
        f"abnormal threshold: {_threshold(before['abnormal_threshold'])} -> "
        f"{_threshold(after['abnormal_threshold'])} (specificity "
        f"{record['specificity_on_these_images']:.3f} on these images for "
        f"{result.specificity:g} asked; sensitivity not measurable without abnormal studies)",
        f"hotspot threshold:  {_threshold(before['hotspot_threshold'])} -> "
        f"{_threshold(after['hotspot_threshold'])} (99.5th percentile of normal error inside "
        "the anatomy)",
        f"structure table:    {'declared' if before['structure_table'] else 'none'} -> "
        f"{'declared (fitted on these images)' if after['structure_table'] else 'none'}",
    ]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def cmd_model_calibrate(args: argparse.Namespace) -> int:
    from skelex_desktop.core.inference.package import PackageError
    from skelex_desktop.core.inference.registry import Registry
    from skelex_desktop.core.inference.user_calibration import (
        CalibrationRefused,
        NotEnoughImages,
        calibrate_on_normal_studies,
    )
    from skelex_desktop.core.progress import TextProgress

    settings = _settings(args)
    progress = TextProgress()
    try:
        result = calibrate_on_normal_studies(
            Registry.from_settings(settings),
            args.name,
            [Path(p) for p in args.studies],
            specificity=args.specificity,
            structure_table=args.structure_table,
            new_name=args.new_name,
            threads=settings.inference_threads,
            progress=progress,
        )
    except NotEnoughImages as exc:
        progress.finish()
        for skipped in exc.skipped:
            print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
        raise CliError(str(exc), code=2) from exc
    except CalibrationRefused as exc:
        progress.finish()
        raise CliError(str(exc), code=2) from exc
    except (PackageError, FileExistsError) as exc:
        progress.finish()
        raise CliError(str(exc)) from exc
    progress.finish()
    emit(args, result.to_json(), _calibration_text(result))
    return 0


def cmd_errormap(args: argparse.Namespace) -> int:
    from skelex_desktop.core.inference.package import PackageError
    from skelex_desktop.core.inference.service import analyse_file
    from skelex_desktop.core.ingest.limits import IngestError

    settings = _settings(args)
    try:
        result = analyse_file(
            Path(args.image_file), settings, model=args.model, mode=args.mode, frame=args.frame
        )
    except (PackageError, IngestError) as exc:
        raise CliError(str(exc)) from exc
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import numpy as np

    np.save(out, result.error_map)
    summary = result.summary()
    if args.hotspots:
        Path(args.hotspots).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    text = (
        f"wrote {out} {result.error_map.shape[1]}x{result.error_map.shape[0]}; anomaly score "
        f"{result.score:.4g} ({'abnormal suggested' if result.abnormal else 'not flagged'}), "
        f"{len(result.hotspots)} hotspot(s){' (cached)' if result.cached else ''}"
    )
    emit(args, summary, text)
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    require_full_edition("Pretraining (`pretrain`)")
    from skelex_desktop.core.progress import TextProgress
    from skelex_desktop.core.training.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        pool_size=args.pool,
        batch_size=args.batch,
        lr=args.lr if args.lr is not None else 7.5e-4 * args.batch / 64,
        warmup_steps=args.warmup,
        total_steps=args.steps,
        max_minutes=args.minutes,
        seed=args.seed,
        bf16=not args.fp32,
    )
    progress = TextProgress()
    try:
        result = pretrain(Path(args.out), cfg, progress, threads=args.threads, workers=args.workers)
    finally:
        progress.finish()
    data = {
        "hf_dir": str(result.hf_dir),
        "steps": result.steps,
        "images_seen": result.images_seen,
        "seconds": round(result.seconds, 1),
        "final_loss": result.final_loss,
        "device": result.device,
        "finished": result.finished,
    }
    emit(
        args,
        data,
        f"{result.steps} steps ({result.images_seen} images, {result.seconds / 60:.1f} min on "
        f"{result.device}), loss {result.final_loss:.4f}; Hugging Face folder: {result.hf_dir}"
        + ("" if result.finished else " (stopped early: run again to resume)"),
    )
    return 0


def register(add: AddCommand) -> None:
    model = add(
        "model", needs_action("model"), "list, import, verify, trust and calibrate model packages"
    )
    sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    ml = sub.add_parser("list", help="list model packages (name, version, size, verified, trusted)")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(handler=cmd_model_list)

    mi = sub.add_parser("import", help="import a Hugging Face ViTMAE checkpoint folder")
    mi.add_argument("hf_dir", metavar="HF_DIR")
    mi.add_argument("--name", required=True)
    mi.add_argument("--int8", action="store_true", help="also write a quantised copy")
    mi.add_argument(
        "--resize",
        choices=("resize", "letterbox"),
        default="resize",
        help="preprocessing: plain resize (reference) or aspect-keeping letterbox",
    )
    mi.add_argument("--version", default="1.0")
    mi.add_argument("--licence", default="as distributed by the weights' authors")
    mi.add_argument(
        "--calibrate-synth",
        type=int,
        default=0,
        metavar="N",
        help="calibrate thresholds on N SynthMSK images (half abnormal)",
    )
    mi.add_argument(
        "--lowpass-sigma",
        type=float,
        metavar="S",
        help="compare input and reconstruction after a Gaussian blur of S model pixels "
        "(declared in the manifest, applied before any calibration)",
    )
    mi.add_argument("--model-card", metavar="FILE", help="copy this MODEL_CARD.md into the package")
    mi.add_argument(
        "--replace", action="store_true", help="atomically replace an existing package of that name"
    )
    mi.add_argument(
        "--models-dir",
        metavar="DIR",
        help="write into DIR instead of the user models dir (data dir/models); the package is "
        "still recorded as trusted in the data dir",
    )
    mi.add_argument("--json", action="store_true")
    mi.set_defaults(handler=cmd_model_import)

    mv = sub.add_parser(
        "verify", help="check that the manifest is trusted and the sha256 of every file"
    )
    mv.add_argument("name", metavar="NAME")
    mv.add_argument("--json", action="store_true")
    mv.set_defaults(handler=cmd_model_verify)

    mt = sub.add_parser(
        "trust",
        help="trust a package's current manifest (one the app did not write), audited",
        description="Record the current manifest of package NAME as trusted, after its files "
        "passed their sha256 check. Use it for a package imported by an older version, or one "
        "you edited or copied in yourself and vouch for; the decision is written to the audit "
        "trail (action model.trust, the global --reader).",
    )
    mt.add_argument("name", metavar="NAME")
    mt.add_argument("--json", action="store_true")
    mt.set_defaults(handler=cmd_model_trust)

    mc = sub.add_parser(
        "calibrate",
        help="calibrate a package's thresholds on your own NORMAL studies",
        description="Calibrate the hotspot and abnormal thresholds of package NAME on studies "
        "known to be NORMAL (DICOM, DICOMDIR, PNG, JPEG, TIFF files or folders). A user package "
        "is updated in place; a bundled one is copied under --as NEWNAME first.",
    )
    mc.add_argument("name", metavar="NAME")
    mc.add_argument("studies", nargs="+", metavar="STUDIES", help="files or folders of normals")
    mc.add_argument(
        "--specificity",
        type=_specificity,
        default=0.95,
        help="fraction of normal images scored at or below the abnormal threshold (0.95)",
    )
    mc.add_argument(
        "--structure-table",
        action="store_true",
        help="also fit and declare a structure normalisation table (off by default)",
    )
    mc.add_argument(
        "--as",
        dest="new_name",
        metavar="NEWNAME",
        help="calibrate a copy named NEWNAME in the user models folder (required for bundled)",
    )
    mc.add_argument("--json", action="store_true")
    mc.set_defaults(handler=cmd_model_calibrate)

    em = add("errormap", cmd_errormap, "write the error map of one image file")
    em.add_argument("image_file", metavar="IMAGE_FILE")
    em.add_argument("--model", metavar="NAME")
    em.add_argument("--out", required=True, metavar="MAP.npy")
    em.add_argument("--hotspots", metavar="FILE.json")
    em.add_argument(
        "--mode",
        choices=("complementary", "reference"),
        default="complementary",
        help="complementary deterministic masks (default) or 10 seeded random passes",
    )
    em.add_argument("--frame", type=int, default=0)
    em.add_argument("--json", action="store_true")

    pt = add("pretrain", cmd_pretrain, "pretrain a MAE on synthetic or imported images")
    pt.add_argument("--out", required=True, metavar="DIR", help="run folder (resumes if present)")
    pt.add_argument("--minutes", type=float, help="stop after this much training time")
    pt.add_argument("--steps", type=int, default=1000, help="total optimiser steps")
    pt.add_argument("--batch", type=int, default=64)
    pt.add_argument("--lr", type=float, help="peak learning rate (default 7.5e-4 x batch/64)")
    pt.add_argument("--warmup", type=int, default=60)
    pt.add_argument("--pool", type=int, default=4000, help="normal SynthMSK images to render")
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--threads", type=int)
    pt.add_argument(
        "--workers", type=int, default=1, help="processes rendering the image pool (default 1)"
    )
    pt.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    pt.add_argument("--json", action="store_true")
