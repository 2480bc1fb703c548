"""`team`: team mode on a shared database; `team agreement`: inter-reader agreement per task."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from skelex_desktop.commands.common import (
    AddCommand,
    CliError,
    emit,
    needs_action,
    open_ws,
    positive_int,
)
from skelex_desktop.commands.team_actions import register_actions

if TYPE_CHECKING:
    from skelex_desktop.core.team.agreement import AgreementReport, Estimate, TaskAgreement


def _image_ids(text: str) -> list[int]:
    """argparse type of --image-ids: ids separated by commas (or given as several words)."""
    try:
        ids = [int(part) for part in text.replace(",", " ").split()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of image ids") from exc
    if any(i < 1 for i in ids):
        raise argparse.ArgumentTypeError(f"{text!r}: image ids are positive numbers")
    return ids


def cmd_agreement(args: argparse.Namespace) -> int:
    from skelex_desktop.core.team.agreement import AgreementError, agreement_report

    ids = None if args.image_ids is None else [i for chunk in args.image_ids for i in chunk]
    ws = open_ws(args)
    try:
        with ws.db.read() as session:
            report = agreement_report(
                session,
                tasks=args.task,
                image_ids=ids,
                weights=args.weights,
                resamples=args.resamples,
                seed=args.seed,
            )
    except AgreementError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ws.close()
    emit(args, report.to_json(), agreement_text(report))
    return 0


def _kappa(estimate: Estimate | None) -> str:
    if estimate is None:
        return ""
    if not estimate.defined:
        return f"{'n/a':>6} {'':<16}"
    return f"{estimate.value:>6.3f} [{estimate.low:>6.3f}, {estimate.high:>6.3f}]"


def _row(name: str, kappa: Estimate, weighted: Estimate | None) -> str:
    agree = "" if kappa.n == 0 else f"{kappa.agreement:.0%}"
    return f"  {name[:34]:<34} {kappa.n:>5} {agree:>5}  {_kappa(kappa):<24} {_kappa(weighted)}"


def _task_text(task: TaskAgreement) -> list[str]:
    per = "per study" if task.unit == "study" else "per image"
    weighted = f", weighted kappa: {task.weights}" if task.weights else ""
    readers = len(task.raters)
    lines = [
        f"{task.task} ({task.kind}, {per}{weighted}): {readers} readers, {task.units} {task.unit}s"
    ]
    header = f"  {'readers':<34} {'n':>5} {'agree':>5}  {'kappa  [95% CI]':<24}"
    lines.append(header + ("  weighted [95% CI]" if task.weights else ""))
    notes: list[str] = []
    for pair in task.pairs:
        name = f"{pair.reader_a} / {pair.reader_b}"
        lines.append(_row(name, pair.kappa, pair.weighted))
        for estimate in (pair.kappa, pair.weighted):
            if estimate is not None and estimate.reason:
                notes.append(f"{name}: {estimate.reason}")
    if task.fleiss is not None:
        lines.append(_row(f"Fleiss, all {readers} readers", task.fleiss, None))
        if task.fleiss.reason:
            notes.append(f"Fleiss: {task.fleiss.reason}")
    uncertain = [f"{r.reader} {r.uncertain}" for r in task.readers if r.uncertain]
    unusable = [f"{r.reader} {r.unusable}" for r in task.readers if r.unusable]
    if uncertain:
        notes.append(f"uncertain decisions left out: {', '.join(uncertain)}")
    if unusable:
        notes.append(f"values that are not a class of the task, left out: {', '.join(unusable)}")
    if task.fewer_reads:
        notes.append(
            f"{task.unit}s not decided by every reader, left out of Fleiss: {task.fewer_reads}"
        )
    return [line.rstrip() for line in lines] + [f"  note: {note}" for note in notes]


def agreement_text(report: AgreementReport) -> str:
    """The report as a terminal table: a block per task with pairs, Fleiss and notes."""
    scope = "all images" if report.images is None else f"{report.images} images"
    lines = [
        f"Agreement of the readers' current decisions over {scope}; 95% intervals: bootstrap "
        f"percentiles over images, {report.resamples} resamples, seed {report.seed}."
    ]
    empty: list[str] = []
    for task in report.tasks:
        if task.pairs:
            lines += ["", *_task_text(task)]
        elif task.readers or task.kind in ("regression", "region"):
            lines += ["", f"{task.task} ({task.kind}): {task.skipped}"]
        else:
            empty.append(task.task)
    if empty:
        lines += ["", f"no decisions yet: {', '.join(empty)}"]
    return "\n".join(lines)


def register(add: AddCommand) -> None:
    team = add("team", needs_action("team"), "team mode: reading together, agreement")
    sub = team.add_subparsers(dest="team_command", metavar="ACTION")
    register_actions(sub)  # init, add-user, project, queue, show, adjudicate
    agreement = sub.add_parser(
        "agreement",
        help="inter-reader agreement per task: Cohen's kappa per reader pair (weighted for "
        "ordinal tasks), Fleiss' kappa over all readers, bootstrap 95%% intervals",
        description="Agreement of the readers' current decisions per task: Cohen's kappa per "
        "reader pair (and weighted kappa for ordinal tasks such as KL grade), Fleiss' kappa over "
        "all readers on the images every one of them decided, percent agreement, and 95%% "
        "bootstrap percentile intervals resampling images. Uncertain decisions are left out and "
        "counted; regression and region tasks are skipped. See docs/AGREEMENT.md.",
    )
    agreement.add_argument(
        "--task", action="append", metavar="T", help="only this task (repeat for several)"
    )
    agreement.add_argument(
        "--image-ids",
        type=_image_ids,
        nargs="+",
        metavar="ID",
        help="only these images (ids as `worklist` lists them, spaces or commas); default all",
    )
    agreement.add_argument(
        "--weights",
        choices=("quadratic", "linear"),
        default="quadratic",
        help="weights of the ordinal tasks' weighted kappa (default quadratic)",
    )
    agreement.add_argument(
        "--resamples", type=positive_int, default=2000, help="bootstrap resamples (default 2000)"
    )
    agreement.add_argument(
        "--seed",
        type=int,
        default=19,
        help="seed of the bootstrap (default 19): same data and seed, same intervals",
    )
    agreement.add_argument("--json", action="store_true", help="machine-readable output")
    agreement.set_defaults(handler=cmd_agreement)
