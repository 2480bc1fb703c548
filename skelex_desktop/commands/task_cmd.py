"""`task list` and `task add`: the label schema from the command line."""

from __future__ import annotations

import argparse

from skelex_desktop.commands.common import AddCommand, CliError, emit, needs_action, open_ws
from skelex_desktop.core.domain import TaskKind


def cmd_list(args: argparse.Namespace) -> int:
    from skelex_desktop.core.review.schema import list_tasks, task_dict

    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            tasks = [task_dict(t) for t in list_tasks(session)]
    finally:
        ws.close()
    text = "\n".join(
        f"{t['name']:<22} {t['kind']:<11} {t['scope']:<6} {'required' if t['required'] else '':<9}"
        f"{', '.join(t['classes'])[:62]}"
        for t in tasks
    )
    emit(args, tasks, text)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from skelex_desktop.core.review.schema import SchemaError, TaskSpec, add_task, task_dict

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else []
    ws = open_ws(args)
    try:
        try:
            spec = TaskSpec.from_dict(
                {
                    "name": args.name,
                    "kind": args.kind,
                    "classes": classes,
                    "title": args.title or "",
                    "description": args.description or "",
                    "required": args.required,
                    "scope": args.scope,
                }
            )
            with ws.db.write() as session:
                task = task_dict(add_task(session, spec, ws.settings.reader))
        except SchemaError as exc:
            raise CliError(str(exc), code=2) from exc
    finally:
        ws.close()
    emit(args, task, f"added task {task['name']} ({task['kind']}, order {task['order']})")
    return 0


def register(add: AddCommand) -> None:
    task = add("task", needs_action("task"), "list or add label-schema tasks")
    sub = task.add_subparsers(dest="task_command", metavar="ACTION")
    lst = sub.add_parser("list", help="the tasks of the label schema, in order")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_list)
    new = sub.add_parser("add", help="add a task at the end of the schema")
    new.add_argument("name", help="letters, digits and underscores")
    new.add_argument("--kind", required=True, choices=[k.value for k in TaskKind])
    new.add_argument("--classes", help="comma-separated classes (binary: negative,positive)")
    new.add_argument("--title")
    new.add_argument("--description")
    new.add_argument(
        "--scope",
        choices=["image", "study"],
        default="image",
        help="study: one decision for the whole study (default: per image)",
    )
    new.add_argument(
        "--required", action="store_true", help="Enter confirms an image only once this is decided"
    )
    new.add_argument("--json", action="store_true", help="machine-readable output")
    new.set_defaults(handler=cmd_add)
