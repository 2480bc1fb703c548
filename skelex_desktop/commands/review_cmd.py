"""`review confirm IMAGE_ID...`: Enter from the command line, with the window's rules."""

from __future__ import annotations

import argparse

from skelex_desktop.commands.common import AddCommand, emit, needs_action, open_ws


def cmd_confirm(args: argparse.Namespace) -> int:
    """Confirm each image as Enter does: the shown suggestions Enter accepts are stored as the
    reader's, and an image with an undecided required task (or no decision at all) is refused
    with its reason while the others are confirmed."""
    from skelex_desktop.core.review.decisions import confirm_image
    from skelex_desktop.core.review.labels import LabelError

    ws = open_ws(args)
    confirmed: dict[int, list[str]] = {}
    refused: dict[int, str] = {}
    try:
        for image_id in args.image_ids:
            try:
                changes = confirm_image(ws.db, image_id, ws.settings.reader)
            except LabelError as exc:
                refused[image_id] = str(exc)
                continue
            confirmed[image_id] = sorted(changes.tasks)
    finally:
        ws.close()
    lines = [f"confirmed {len(confirmed)} image(s), refused {len(refused)}"]
    lines += [f"  image {i}: {reason}" for i, reason in refused.items()]
    data = {
        "confirmed": {str(i): tasks for i, tasks in confirmed.items()},
        "refused": {str(i): reason for i, reason in refused.items()},
    }
    emit(args, data, "\n".join(lines))
    return 1 if refused else 0


def register(add: AddCommand) -> None:
    review = add("review", needs_action("review"), "review decisions from the command line")
    sub = review.add_subparsers(dest="review_command", metavar="ACTION")
    confirm = sub.add_parser(
        "confirm",
        help="confirm images as Enter does (required tasks decided, suggestions Enter accepts)",
    )
    confirm.add_argument("image_ids", nargs="+", type=int, metavar="IMAGE_ID")
    confirm.add_argument("--json", action="store_true", help="machine-readable output")
    confirm.set_defaults(handler=cmd_confirm)
