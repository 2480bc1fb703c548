"""`import PATH...` and `worklist`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from skelex_desktop.commands.common import AddCommand, CliError, emit, iso_date, open_ws
from skelex_desktop.core.domain import ImageStatus


def cmd_import(args: argparse.Namespace) -> int:
    from skelex_desktop.core.ingest import ImportOptions, import_paths
    from skelex_desktop.core.progress import TextProgress

    ws = open_ws(args)
    progress = TextProgress()
    try:
        options = ImportOptions(
            data_dir=ws.settings.data_dir, copy=args.copy, reader=ws.settings.reader
        )
        report = import_paths(ws.db, [Path(p) for p in args.paths], options, progress)
    finally:
        progress.finish()
        ws.close()
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    emit(args, report.to_json(), report.summary())
    return 0


def _informative_ids(ws) -> list[int]:  # noqa: ANN001 - Workspace
    from skelex_desktop.core.heads.informative import informative_image_ids
    from skelex_desktop.core.inference.registry import Registry

    manifest = Registry.from_settings(ws.settings).manifest(ws.settings.active_model)
    ids = informative_image_ids(ws.db, ws.settings.data_dir, manifest)
    if not ids:
        raise CliError(
            "no unlabelled image has a task-head prediction yet: run `analyze --all`, then "
            "`train --task T`",
            code=2,
        )
    return ids


def cmd_worklist(args: argparse.Namespace) -> int:
    from skelex_desktop.core.review.worklist import WorklistQuery, query_worklist

    query = WorklistQuery(
        status=args.status,
        modality=args.modality,
        body_part=args.body_part,
        laterality=args.laterality,
        date_from=args.date_from,
        date_to=args.date_to,
        text=args.search,
        sort=args.sort,
        descending=not args.ascending,
        offset=args.offset,
        limit=args.limit,
    )
    ws = open_ws(args)
    try:
        if args.informative:
            query.image_ids = _informative_ids(ws)
            query.sort, query.descending = "rank", False
        with ws.db.read() as session:
            try:
                page = query_worklist(session, query)
            except ValueError as exc:
                raise CliError(str(exc), code=2) from exc
    finally:
        ws.close()
    rows = [row.to_json() for row in page.rows]
    lines = [
        f"{r['image_id']:>6}  {r['patient_id']:<14} {str(r['study_date'] or ''):<10} "
        f"{r['body_part']:<8} {r['view']:<4} {r['laterality']:<2} {r['status']:<10} "
        f"{'' if r['ai_score'] is None else format(r['ai_score'], '.3f')}"
        for r in rows
    ]
    lines.append(f"{len(rows)} of {page.total} images")
    emit(args, {"total": page.total, "rows": rows}, "\n".join(lines))
    return 0


def register(add: AddCommand) -> None:
    imp = add("import", cmd_import, "import DICOM, DICOMDIR, PNG/JPEG/TIFF files or folders")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--copy", action="store_true", help="copy files into the managed store")
    imp.add_argument("--report", metavar="FILE.json", help="write the per-file report here")
    imp.add_argument("--json", action="store_true", help="machine-readable output")

    wl = add("worklist", cmd_worklist, "list images of the worklist")
    wl.add_argument("--status", choices=[s.value for s in ImageStatus])
    wl.add_argument("--modality")
    wl.add_argument("--body-part")
    wl.add_argument("--laterality", choices=["L", "R"])
    wl.add_argument("--from", dest="date_from", type=iso_date, metavar="YYYY-MM-DD")
    wl.add_argument("--to", dest="date_to", type=iso_date, metavar="YYYY-MM-DD")
    wl.add_argument("--search", metavar="TEXT", help="patient, accession or body part text")
    wl.add_argument("--sort", default="study_date", help="column to sort on")
    wl.add_argument("--ascending", action="store_true")
    wl.add_argument(
        "--informative",
        action="store_true",
        help="unlabelled images, most informative first for the active task heads",
    )
    wl.add_argument("--offset", type=int, default=0)
    wl.add_argument("--limit", type=int, default=50)
    wl.add_argument("--json", action="store_true", help="machine-readable output")
