"""`export`: write a labelled set as CSV/JSONL, COCO, YOLO, HF imagefolder or DICOM objects."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from skelex_desktop.commands.common import AddCommand, CliError, emit, iso_date, open_ws

FORMAT_HELP = "csv, jsonl, coco, yolo, hf, dicom-sr, dicom-pm, dicom-seg (comma-separated)"


def cmd_export(args: argparse.Namespace) -> int:
    from skelex_desktop.core.export import (
        ExportError,
        ExportOptions,
        Selection,
        export_labelled_set,
        parse_formats,
        parse_split,
    )
    from skelex_desktop.core.progress import Cancelled, TextProgress

    try:
        options = ExportOptions(
            out=Path(args.out),
            formats=parse_formats(args.format),
            selection=Selection(
                tasks=tuple(args.task or ()),
                status=args.status,
                reader=args.reader_filter,
                date_from=args.date_from,
                date_to=args.date_to,
                model_version=args.model_version,
            ),
            deidentify=args.deidentify,
            split=parse_split(args.split),
            seed=args.seed,
            images=args.images,
            include_burned_in=args.include_burned_in,
            with_ai=args.with_ai,
            with_reads=args.reads,
        )
        options.validate()
    except ExportError as exc:
        raise CliError(str(exc), code=2) from exc
    ws = open_ws(args)
    progress = TextProgress()

    def terminated(_signum: int, _frame: object) -> None:
        progress.cancel()  # SIGTERM (kill, timeout, logout): stop and remove the partial folder

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        result = export_labelled_set(ws.db, options, progress, data_dir=ws.settings.data_dir)
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    except Cancelled as exc:
        raise CliError("export cancelled; nothing was written") from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.finish()
        ws.close()
    lines = [result.summary()] + [f"warning: {w}" for w in result.warnings]
    lines += [f"note: {n}" for n in result.notes]
    emit(args, result.to_json(), "\n".join(lines))
    return 0


def register(add: AddCommand) -> None:
    ex = add("export", cmd_export, "export a labelled set (optionally de-identified)")
    ex.add_argument("--format", required=True, metavar="F", help=FORMAT_HELP)
    ex.add_argument("--out", required=True, metavar="DIR", help="new (or empty) target folder")
    ex.add_argument(
        "--deidentify",
        action="store_true",
        help="DICOM PS3.15 Basic Profile, pseudonyms, verified by a scan",
    )
    ex.add_argument("--task", action="append", metavar="T", help="only this task (repeatable)")
    ex.add_argument(
        "--status",
        default="confirmed",
        choices=("confirmed", "in_review", "analysed", "new", "any"),
        help="image workflow status to export (default confirmed)",
    )
    ex.add_argument(
        "--reader", dest="reader_filter", metavar="R", help="only labels and regions of this reader"
    )
    ex.add_argument(
        "--from",
        dest="date_from",
        type=iso_date,
        metavar="DATE",
        help="study date on or after (YYYY-MM-DD)",
    )
    ex.add_argument(
        "--to",
        dest="date_to",
        type=iso_date,
        metavar="DATE",
        help="study date on or before (YYYY-MM-DD)",
    )
    ex.add_argument(
        "--model-version",
        metavar="V",
        help="only images with a prediction of this model (name, version, name:version)",
    )
    ex.add_argument(
        "--split",
        default="0.7,0.15,0.15",
        metavar="TRAIN,VAL,TEST",
        help="patient-level split fractions (default 0.7,0.15,0.15)",
    )
    ex.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    ex.add_argument(
        "--images",
        choices=("png16", "png8", "dicom", "none"),
        help="image files (default: png8 with yolo or hf, dicom for DICOM-only exports, else png16)",
    )
    ex.add_argument(
        "--include-burned-in",
        action="store_true",
        help="also export images flagged BurnedInAnnotation YES",
    )
    ex.add_argument(
        "--with-ai",
        action="store_true",
        help="add the AI's suggestions to CSV/JSONL (ai_<task>, _p, _model), beside the labels",
    )
    ex.add_argument(
        "--reads",
        action="store_true",
        help="add each reader's own reads to CSV/JSONL (<task>__<reader>; readers R01.. when "
        "de-identified), beside the final labels",
    )
    ex.add_argument("--json", action="store_true", help="machine-readable output")
