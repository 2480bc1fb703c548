"""Commands of the CLI contract whose features are not in this version yet.

They parse their documented options (so `--help` describes them) and exit with status 3 and a
one-line reason instead of pretending to work.
"""

from __future__ import annotations

import argparse

from skelex_desktop import __version__
from skelex_desktop.commands.common import AddCommand, CliError, needs_action

FEATURES = {
    "model": "the model registry",
    "analyze": "batch analysis",
    "errormap": "error maps",
    "pretrain": "MAE pretraining",
    "train": "task-head training",
    "export": "export of labelled sets",
}


def cmd_unavailable(args: argparse.Namespace) -> int:
    name = args.command if args.command != "model" else f"model {args.model_command}"
    raise CliError(
        f"'{name}' ({FEATURES[args.command]}) is not available in skelex-desktop {__version__}",
        code=3,
    )


def register(add: AddCommand) -> None:
    model = add("model", needs_action("model"), "list, import and verify model packages")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    ml = sub.add_parser("list", help="list model packages (name, version, size, verified)")
    ml.add_argument("--json", action="store_true")
    mi = sub.add_parser("import", help="import a Hugging Face ViTMAE checkpoint folder")
    mi.add_argument("hf_dir", metavar="HF_DIR")
    mi.add_argument("--name", required=True)
    mi.add_argument("--int8", action="store_true", help="also write a quantised copy")
    mv = sub.add_parser("verify", help="check the sha256 of every file of a package")
    mv.add_argument("name", metavar="NAME")
    for p in (ml, mi, mv):
        p.set_defaults(handler=cmd_unavailable)

    an = add("analyze", cmd_unavailable, "compute predictions, error maps and embeddings")
    an.add_argument("--model", metavar="NAME")
    group = an.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true")
    group.add_argument("image_ids", nargs="*", default=[], metavar="IMAGE_ID")

    em = add("errormap", cmd_unavailable, "write the error map of one image file")
    em.add_argument("image_file", metavar="IMAGE_FILE")
    em.add_argument("--model", metavar="NAME")
    em.add_argument("--out", required=True, metavar="MAP.npy")
    em.add_argument("--hotspots", metavar="FILE.json")

    pt = add("pretrain", cmd_unavailable, "pretrain a MAE on synthetic or imported images")
    pt.add_argument("--out", metavar="DIR")

    tr = add("train", cmd_unavailable, "train a task head on confirmed labels")
    tr.add_argument("--task", required=True, metavar="TASK")

    ex = add("export", cmd_unavailable, "export a labelled set")
    ex.add_argument("--format", required=True, metavar="F")
    ex.add_argument("--out", required=True, metavar="DIR")
    ex.add_argument("--deidentify", action="store_true")
