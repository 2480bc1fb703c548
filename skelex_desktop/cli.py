"""Command line: `skelex-desktop` (no command = the window) and its subcommands.

Every command exits 0 on success and non-zero with a one-line reason on stderr on failure;
`--json` gives machine-readable output. Heavy modules are imported inside the handlers. When the
reader of the output goes away (`worklist | head`), the command stops quietly with status 141,
as a Unix tool killed by SIGPIPE would.
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
from skelex_desktop.core.names import InvalidName, check_name

STDOUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for `yes | head`'s `yes`


def cmd_gui(args: argparse.Namespace) -> int:
    from skelex_desktop.app import run_gui

    paths = getattr(args, "paths", None) or None
    return run_gui(data_dir=args.data_dir, db_url=args.db, reader=args.reader, open_paths=paths)


def cmd_self_test(args: argparse.Namespace) -> int:
    from skelex_desktop.app import display_available
    from skelex_desktop.commands.self_test import run_self_test

    window_step = None
    if display_available():
        from skelex_desktop.ui.self_test import open_and_close_window

        window_step = open_and_close_window
    return run_self_test(args, window_step)


def reader_name(text: str) -> str:
    """argparse type of `--reader`: the rule every stored reader name follows."""
    try:
        return check_name(text)
    except InvalidName as exc:
        raise argparse.ArgumentTypeError(f"{exc}; choose another --reader") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skelex-desktop",
        description="Review musculoskeletal radiographs with the SKELEX model. "
        "Without a command, the window opens.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", metavar="URL", help="database URL (env SKELEX_DB; default SQLite)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (env SKELEX_DATA_DIR)")
    parser.add_argument(
        "--reader",
        metavar="NAME",
        type=reader_name,
        help="reader name recorded with decisions (at most 128 characters, no control characters)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation on a temporary data dir (import, error map, label, undo, "
        "export, window) and exit; never touches your own database",
    )
    parser.set_defaults(handler=cmd_gui, command=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kw)
        p.set_defaults(handler=handler)
        return p

    opener = add(
        "open",
        cmd_gui,
        "open the window, import these files or folders and show the first image (what a file "
        "manager's Open With runs); without paths, just the window",
    )
    opener.add_argument(
        "paths", nargs="*", metavar="PATH", help="DICOM, DICOMDIR, PNG/TIFF or a folder"
    )
    register_all(add)
    return parser


def _stdout_is_closed() -> bool:
    """True when nobody reads our standard output any more (its pipe's reader has gone)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll(), or stdout is not a file
        return True


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        if args.command:
            parser.error("--self-test runs on its own; give no command with it")
        args.handler = cmd_self_test
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print("skelex-desktop: interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        print(f"skelex-desktop: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:  # one line for users; SKELEX_DEBUG=1 shows the traceback
        if isinstance(exc, BrokenPipeError) and _stdout_is_closed():
            _silence_stdout()
            return STDOUT_CLOSED
        if os.environ.get("SKELEX_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"skelex-desktop: error: {message}", file=sys.stderr)
        return 1
