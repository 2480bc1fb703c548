"""Commands of the CLI contract whose features are not in this version yet.

They parse their documented options (so `--help` describes them) and exit with status 3 and a
one-line reason instead of pretending to work.
"""

from __future__ import annotations

import argparse

from skelex_desktop import __version__
from skelex_desktop.commands.common import AddCommand, CliError

FEATURES = {
    "analyze": "batch analysis",
    "train": "task-head training",
}


def cmd_unavailable(args: argparse.Namespace) -> int:
    raise CliError(
        f"'{args.command}' ({FEATURES[args.command]}) is not available in "
        f"skelex-desktop {__version__}",
        code=3,
    )


def register(add: AddCommand) -> None:
    an = add("analyze", cmd_unavailable, "compute predictions, error maps and embeddings")
    an.add_argument("--model", metavar="NAME")
    group = an.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true")
    group.add_argument("image_ids", nargs="*", default=[], metavar="IMAGE_ID")

    tr = add("train", cmd_unavailable, "train a task head on confirmed labels")
    tr.add_argument("--task", required=True, metavar="TASK")

