"""`label import FILE.csv` and `label list`."""

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


def cmd_import(args: argparse.Namespace) -> int:
    from skelex_desktop.core.progress import TextProgress
    from skelex_desktop.core.review.label_import import import_labels_csv

    ws = open_ws(args)
    progress = TextProgress()
    try:
        result = import_labels_csv(ws.db, Path(args.file), ws.settings.reader, progress)
    finally:
        progress.finish()
        ws.close()
    if result.errors:
        for error in result.errors:
            print(f"skelex-desktop: {args.file}: {error}", file=sys.stderr)
        shown = len(result.errors)
        if result.invalid > shown:
            print(
                f"skelex-desktop: {args.file}: ... and {result.invalid - shown} more invalid rows",
                file=sys.stderr,
            )
        raise CliError(
            f"{result.invalid} invalid rows; nothing was imported from {args.file}: correct "
            "the lines above and import the file again"
        )
    emit(args, {"imported": result.imported, "errors": []}, f"imported {result.imported} labels")
    return 0


def register(add: AddCommand) -> None:
    label = add("label", needs_action("label"), "import and list labels")
    sub = label.add_subparsers(dest="label_command", metavar="ACTION")
    imp = sub.add_parser(
        "import",
        help="import labels from a CSV with columns image (SOP Instance UID or imported file "
        "path), task, value [, uncertain, reader] (UTF-8); a file with any invalid row imports "
        "nothing",
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--json", action="store_true", help="machine-readable output")
    imp.set_defaults(handler=cmd_import)
    lst = sub.add_parser("list", help="list the current label of every image and task")
    lst.add_argument("--task", help="only this task")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_list)
