"""`audit report`: what the AI changed, per reader, task and model version."""

from __future__ import annotations

import argparse

from skelex_desktop.commands.common import AddCommand, emit, needs_action, open_ws


def cmd_report(args: argparse.Namespace) -> int:
    from skelex_desktop.core.review.influence import influence_report

    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            report = influence_report(session)
    finally:
        ws.close()
    lines = [
        f"{'reader':<16} {'task':<20} {'model':<24} {'shown':>5} {'accepted':>8} "
        f"{'overrode':>8} {'uncert.':>7} {'no sugg.':>8} {'agree':>6}"
    ]
    for r in report.rows:
        agree = "" if r.agreement is None else f"{r.agreement:.0%}"
        lines.append(
            f"{r.reader[:16]:<16} {r.task[:20]:<20} {r.model[:24]:<24} {r.shown:>5} "
            f"{r.accepted:>8} {r.overridden:>8} {r.uncertain:>7} {r.no_suggestion:>8} {agree:>6}"
        )
    for reader, seconds in report.seconds_per_image.items():
        shown = "-" if seconds is None else f"{seconds:.1f} s"
        lines.append(f"{reader}: median {shown} per confirmed image")
    if not report.rows:
        lines = ["no human decisions yet"]
    emit(args, report.to_json(), "\n".join(lines))
    return 0


def register(add: AddCommand) -> None:
    audit = add("audit", needs_action("audit"), "reports from the audit trail")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    report = sub.add_parser(
        "report", help="AI influence: suggestions shown, accepted, overridden, per reader"
    )
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.set_defaults(handler=cmd_report)
