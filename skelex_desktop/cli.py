"""Command line: `skelex-desktop` (no command = the window) and its subcommands.

Every command exits 0 on success and non-zero with a one-line reason on stderr on failure;
`--json` gives machine-readable output. Heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from skelex_desktop import __version__
from skelex_desktop.commands import register_all
from skelex_desktop.commands.common import CliError, Handler


def cmd_gui(args: argparse.Namespace) -> int:
    from skelex_desktop.app import run_gui

    return run_gui(data_dir=args.data_dir, db_url=args.db, reader=args.reader)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skelex-desktop",
        description="Review musculoskeletal radiographs with the SKELEX model. "
        "Without a command, the window opens.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", metavar="URL", help="database URL (env SKELEX_DB; default SQLite)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (env SKELEX_DATA_DIR)")
    parser.add_argument("--reader", metavar="NAME", help="reader name recorded with decisions")
    parser.set_defaults(handler=cmd_gui, command=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kw)
        p.set_defaults(handler=handler)
        return p

    register_all(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("skelex-desktop: interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        print(f"skelex-desktop: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:  # one line for users; SKELEX_DEBUG=1 shows the traceback
        if os.environ.get("SKELEX_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"skelex-desktop: error: {message}", file=sys.stderr)
        return 1
