"""`team init`, `team add-user`, `team project`, `team queue`, `team show`, `team adjudicate`: a shared PostgreSQL database, reading projects and adjudication."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TYPE_CHECKING, Any

from skelex_desktop.commands.common import CliError, emit, open_ws

if TYPE_CHECKING:
    from skelex_desktop.core.review.worklist import WorklistQuery
    from skelex_desktop.core.team.adjudication import QueueItem
    from skelex_desktop.core.team.projects import ProjectView

FILTER_KEYS = ("status", "modality", "body_part", "laterality", "from", "to", "text", "ids")


def image_filters(items: list[str]) -> WorklistQuery:
    """`--images KEY=VALUE ...` (the worklist's filters; `all` for every image) as a query."""
    from skelex_desktop.core.review.worklist import WorklistQuery

    query = WorklistQuery()
    for item in items:
        if item == "all":
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if not sep or key not in {k.replace("-", "_") for k in FILTER_KEYS} or not value:
            raise CliError(
                f"--images {item!r}: give KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)} "
                "(e.g. status=analysed body_part=HAND ids=1,2,3), or 'all'"
            )
        if key in ("from", "to"):
            try:
                day = date.fromisoformat(value)
            except ValueError as exc:
                raise CliError(f"--images {item!r}: {value!r} is not a date (YYYY-MM-DD)") from exc
            setattr(query, "date_from" if key == "from" else "date_to", day)
        elif key == "ids":
            try:
                query.image_ids = [int(v) for v in value.replace(",", " ").split()]
            except ValueError as exc:
                raise CliError(f"--images {item!r}: ids are whole numbers, e.g. ids=1,2,3") from exc
        elif key == "status":
            query.status = [s for s in value.split(",") if s]
        else:
            setattr(query, key, value)
    return query


def cmd_init(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.setup import TeamSetupError, init_team

    ws = open_ws(args)
    try:
        result = init_team(ws.db)
    except TeamSetupError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    text = (
        f"team database {result.database} ready: roles {', '.join(result.roles)}; row-level "
        f"security on {', '.join(result.tables)}. Add people with "
        "`skelex-desktop team add-user NAME --role reader|adjudicator|admin`."
    )
    emit(args, {"database": result.database, "roles": result.roles, "rls": result.tables}, text)
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.setup import TeamSetupError, add_user

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CliError("--password-stdin: standard input held no password")
    ws = open_ws(args)
    try:
        created = add_user(ws.db, args.name, args.role, password)
    except TeamSetupError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    verb = "created" if created else "updated"
    emit(
        args,
        {"name": args.name, "role": args.role, "created": created},
        f"user {args.name} {verb}: {args.role}",
    )
    return 0


def _project_text(p: ProjectView) -> str:
    flags = [p.status, "blinded" if p.blinded else "not blinded"]
    flags.append("AI shown" if p.show_ai else "AI hidden")
    return (
        f"{p.name}: {p.images} images, tasks {', '.join(p.tasks)}, readers "
        f"{', '.join(p.readers)}, {p.reads_per_image} reads per image ({', '.join(flags)})"
    )


def cmd_project_create(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.projects import ProjectError, create_project

    query = image_filters(args.images)
    ws = open_ws(args)
    try:
        view = create_project(
            ws.db,
            args.name,
            query,
            args.task,
            args.reader_name,
            args.reads,
            show_ai=args.show_ai,
            blinded=args.blinded,
            who=ws.settings.reader,
        )
    except ProjectError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    emit(args, view.to_json(), f"project {_project_text(view)}")
    return 0


def cmd_project_list(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.projects import list_projects

    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            views = list_projects(session)
    finally:
        ws.close()
    text = "\n".join(_project_text(v) for v in views) or "no projects yet (team project create)"
    emit(args, [v.to_json() for v in views], text)
    return 0


def _set_status(args: argparse.Namespace, status: str) -> int:
    from skelex_desktop.core.team.projects import ProjectError, set_status

    ws = open_ws(args)
    try:
        view = set_status(ws.db, args.name, status, ws.settings.reader)
    except ProjectError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    emit(args, view.to_json(), f"project {_project_text(view)}")
    return 0


def cmd_project_close(args: argparse.Namespace) -> int:
    return _set_status(args, "closed")


def cmd_project_reopen(args: argparse.Namespace) -> int:
    return _set_status(args, "active")


def _shown(value: Any, uncertain: bool) -> str:
    return "uncertain" if uncertain else str(value)


def _item_text(item: QueueItem) -> str:
    reads = "  ".join(f"{r.reader}={_shown(r.value, r.uncertain)}" for r in item.reads) or "-"
    line = f"{item.project}  image {item.image_id}  {item.task}: {item.state}  reads {reads}"
    if item.ai is not None:
        line += f"  AI={item.ai.get('value')}"
    if item.final is not None:
        line += (
            f"  final={_shown(item.final.value, item.final.uncertain)} by {item.final.adjudicator}"
        )
    return f"{line}  version {item.version}"


def cmd_queue(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.adjudication import AdjudicationError, adjudication_queue
    from skelex_desktop.core.team.projects import ProjectError

    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            items = adjudication_queue(session, args.project, everything=args.all)
    except (AdjudicationError, ProjectError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    text = "\n".join(_item_text(i) for i in items) or "nothing waits for adjudication"
    emit(args, [i.to_json() for i in items], text)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.adjudication import AdjudicationError, image_items

    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            items = image_items(session, args.image_id, args.project)
    except AdjudicationError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    emit(args, [i.to_json() for i in items], "\n".join(_item_text(i) for i in items))
    return 0


def cmd_adjudicate(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.adjudication import AdjudicationError, adjudicate

    if args.value is None and not args.uncertain:
        raise CliError("give --value V (or --uncertain)")
    ws = open_ws(args)
    try:
        final = adjudicate(
            ws.db,
            args.image_id,
            args.task,
            args.value,
            args.version,
            ws.settings.reader,
            uncertain=args.uncertain,
            project_name=args.project,
            note=args.note or "",
        )
    except AdjudicationError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    emit(
        args,
        final.to_json(),
        f"image {args.image_id} {args.task}: final {_shown(final.value, final.uncertain)} "
        f"(version {final.version}, by {final.adjudicator})",
    )
    return 0


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc


def register_actions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The team actions of this module, added to the `team` command's subparsers."""
    init = sub.add_parser(
        "init",
        help="prepare a shared PostgreSQL database: schema, roles skelex_reader / "
        "skelex_adjudicator / skelex_admin, grants, row-level security (see docs/TEAM.md)",
    )
    init.add_argument("--json", action="store_true", help="machine-readable output")
    init.set_defaults(handler=cmd_init)

    user = sub.add_parser(
        "add-user", help="create a person's PostgreSQL login role and give it one team role"
    )
    user.add_argument("name", help="the person's database user name (their reader name)")
    user.add_argument("--role", required=True, choices=("reader", "adjudicator", "admin"))
    user.add_argument(
        "--password-stdin", action="store_true", help="read the user's password from stdin"
    )
    user.add_argument("--json", action="store_true", help="machine-readable output")
    user.set_defaults(handler=cmd_add_user)

    project = sub.add_parser("project", help="reading projects: create, list, close, reopen")
    actions = project.add_subparsers(dest="project_command", metavar="ACTION")
    project.set_defaults(handler=_needs_project_action)
    create = actions.add_parser(
        "create", help="a set of images read by several readers (reads dealt out)"
    )
    create.add_argument("name")
    create.add_argument(
        "--images",
        nargs="+",
        required=True,
        metavar="FILTER",
        help="worklist filters KEY=VALUE (status, modality, body_part, laterality, from, to, "
        "text, ids=1,2,3), or 'all'",
    )
    create.add_argument("--task", action="append", required=True, metavar="T")
    create.add_argument("--reader", dest="reader_name", action="append", required=True, metavar="R")
    create.add_argument("--reads", type=_whole, default=2, help="reads per image (default 2)")
    create.add_argument("--show-ai", action="store_true", help="readers see the AI suggestions")
    create.add_argument(
        "--blinded", action="store_true", help="readers see no one else's decisions"
    )
    create.add_argument("--json", action="store_true", help="machine-readable output")
    create.set_defaults(handler=cmd_project_create)
    for name, handler, text in (
        ("list", cmd_project_list, "every project"),
        ("close", cmd_project_close, "close a project (its blinding ends)"),
        ("reopen", cmd_project_reopen, "make a closed project active again"),
    ):
        p = actions.add_parser(name, help=text)
        if name != "list":
            p.add_argument("name")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(handler=handler)

    queue = sub.add_parser(
        "queue", help="images whose reads are in: disagreements first, then agreements to confirm"
    )
    queue.add_argument("--project", metavar="NAME")
    queue.add_argument("--all", action="store_true", help="every image and task, any state")
    queue.add_argument("--json", action="store_true", help="machine-readable output")
    queue.set_defaults(handler=cmd_queue)

    show = sub.add_parser("show", help="every read of an image side by side, the AI's, the final")
    show.add_argument("image_id", type=_whole, metavar="IMAGE")
    show.add_argument("--project", metavar="NAME")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_show)

    adjudicate = sub.add_parser(
        "adjudicate", help="store the final label of an image and task (as the version read + 1)"
    )
    adjudicate.add_argument("image_id", type=_whole, metavar="IMAGE")
    adjudicate.add_argument("--task", required=True, metavar="T")
    adjudicate.add_argument("--value", metavar="V")
    adjudicate.add_argument("--uncertain", action="store_true")
    adjudicate.add_argument(
        "--version",
        type=_whole,
        required=True,
        metavar="N",
        help="the version you read (team queue / team show; 0 when there is none)",
    )
    adjudicate.add_argument("--project", metavar="NAME")
    adjudicate.add_argument("--note", help="why, kept with the final label")
    adjudicate.add_argument("--json", action="store_true", help="machine-readable output")
    adjudicate.set_defaults(handler=cmd_adjudicate)


def _needs_project_action(_args: argparse.Namespace) -> int:
    raise CliError("'team project' needs an action; see skelex-desktop team project --help", 2)
