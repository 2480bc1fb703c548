"""`label import FILE` (labels, or boxes of region tasks) and `label list`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skelex_desktop.commands.common import AddCommand, CliError, emit, needs_action, open_ws


def cmd_list(args: argparse.Namespace) -> int:
    from skelex_desktop.core.review.labels import current_labels

    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            labels = current_labels(session, args.task)
    finally:
        ws.close()
    text = "\n".join(
        f"{lv.image_id}\t{lv.task}\t{'uncertain' if lv.uncertain else lv.value}\t"
        f"{lv.reader}\t{lv.source}"
        for lv in labels
    )
    emit(args, [lv.to_json() for lv in labels], text or "no labels")
    return 0


def _mapping(pairs: list[str]) -> dict[str, str]:
    """`--map NAME=TASK` options as a dict; a malformed one is refused by name."""
    names: dict[str, str] = {}
    for pair in pairs:
        name, sep, task = pair.partition("=")
        if not sep or not name.strip() or not task.strip():
            raise CliError(f"--map {pair!r}: give NAME=TASK (a category or task name of the file)")
        names[name.strip()] = task.strip()
    return names


def cmd_import(args: argparse.Namespace) -> int:
    from skelex_desktop.core.progress import TextProgress
    from skelex_desktop.core.review.label_import import LabelImportResult, import_labels_csv
    from skelex_desktop.core.review.region_import import (
        BoxImportResult,
        holds_boxes,
        import_boxes,
    )

    path = Path(args.file)
    base = Path(args.base) if args.base else None
    boxes = holds_boxes(path)
    names = _mapping(args.map or [])
    if names and not boxes:
        raise CliError(
            f"--map applies to box files (COCO JSON, or a CSV with x0, y0, x1, y1); {path} "
            "is a label CSV"
        )
    ws = open_ws(args)
    progress = TextProgress()
    result: LabelImportResult | BoxImportResult
    try:
        if boxes:
            result = import_boxes(ws.db, path, ws.settings.reader, names, progress, base)
        else:
            result = import_labels_csv(ws.db, path, ws.settings.reader, progress, base)
    finally:
        progress.finish()
        ws.close()
    what = "rows or annotations" if boxes else "rows"
    if result.errors:
        for error in result.errors:
            print(f"skelex-desktop: {args.file}: {error}", file=sys.stderr)
        shown = len(result.errors)
        if result.invalid > shown:
            print(
                f"skelex-desktop: {args.file}: ... and {result.invalid - shown} more invalid "
                f"{what}",
                file=sys.stderr,
            )
        raise CliError(
            f"{result.invalid} invalid {what}; nothing was imported from {args.file}: correct "
            "the lines above and import the file again"
        )
    if isinstance(result, BoxImportResult):
        again = f" ({result.present} already there)" if result.present else ""
        payload = {"imported": result.imported, "present": result.present, "errors": []}
        emit(args, payload, f"imported {result.imported} boxes{again}")
    else:
        emit(
            args, {"imported": result.imported, "errors": []}, f"imported {result.imported} labels"
        )
    return 0


def register(add: AddCommand) -> None:
    label = add("label", needs_action("label"), "import and list labels")
    sub = label.add_subparsers(dest="label_command", metavar="ACTION")
    imp = sub.add_parser(
        "import",
        help="import labels from a CSV with columns image (SOP Instance UID or file path, "
        "relative to the CSV's folder or absolute), task, value [, uncertain, reader], or one "
        "column per task (SynthMSK's ground_truth.csv); or boxes of region tasks from a CSV "
        "with columns image, task, x0, y0, x1, y1 (pixels) or a COCO detection JSON (UTF-8); "
        "a file with any invalid row imports nothing (docs/INGEST.md)",
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument(
        "--map",
        action="append",
        metavar="NAME=TASK",
        help="boxes: store the file's task or COCO category NAME as region task TASK (repeatable)",
    )
    imp.add_argument(
        "--base",
        metavar="DIR",
        help="the folder relative image paths are relative to (default: the file's folder)",
    )
    imp.add_argument("--json", action="store_true", help="machine-readable output")
    imp.set_defaults(handler=cmd_import)
    lst = sub.add_parser("list", help="list the current label of every image and task")
    lst.add_argument("--task", help="only this task")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_list)
