"""`db upgrade` and `db info`."""

from __future__ import annotations

import argparse

from skelex_desktop.commands.common import AddCommand, emit, needs_action, open_ws


def cmd_upgrade(args: argparse.Namespace) -> int:
    ws = open_ws(args)
    try:
        result = ws.upgrade
        data = {
            "before": result.before,
            "after": result.after,
            "backup": str(result.backup) if result.backup else None,
        }
        if result.before == result.after:
            text = f"database is up to date at revision {result.after}"
        else:
            text = f"upgraded database from {result.before or 'empty'} to {result.after}"
            if result.backup:
                text += f" (backup: {result.backup})"
        emit(args, data, text)
    finally:
        ws.close()
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select
    from sqlalchemy.engine import make_url

    from skelex_desktop.core.db import models
    from skelex_desktop.core.db.migrate import current_revision, head_revision

    counted = (
        models.Patient,
        models.Study,
        models.Series,
        models.Image,
        models.Label,
        models.Prediction,
        models.Task,
        models.ImportJob,
        models.AuditEvent,
    )
    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            counts = {
                m.__tablename__: session.scalar(select(func.count(m.id))) or 0 for m in counted
            }
        data = {
            "url": make_url(ws.db.url).render_as_string(hide_password=True),
            "read_only": ws.read_only,
            "revision": current_revision(ws.db.engine),
            "head": head_revision(),
            "data_dir": str(ws.settings.data_dir),
            "counts": counts,
        }
    finally:
        ws.close()
    lines = [
        f"database: {data['url']}" + (" (read-only)" if data["read_only"] else ""),
        f"revision: {data['revision']} (head {data['head']})",
        f"data dir: {data['data_dir']}",
    ]
    lines += [f"{name}: {n}" for name, n in counts.items()]
    emit(args, data, "\n".join(lines))
    return 0


def register(add: AddCommand) -> None:
    db = add("db", needs_action("db"), "database maintenance")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    up = sub.add_parser("upgrade", help="apply schema migrations (after a backup of the file)")
    up.add_argument("--json", action="store_true", help="machine-readable output")
    up.set_defaults(handler=cmd_upgrade)
    info = sub.add_parser("info", help="database location, schema revision and row counts")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=cmd_info)
