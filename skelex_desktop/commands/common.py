"""What every command handler shares: errors, output and opening the workspace."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import date
from typing import Any

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[..., argparse.ArgumentParser]


class CliError(Exception):
    """A failure to report as one line on stderr, with exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print `data` as JSON with --json, else the human-readable `text`."""
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)


def open_ws(args: argparse.Namespace):  # noqa: ANN201 - Workspace is imported lazily
    """The workspace selected by the global options (--data-dir, --db, --reader)."""
    from skelex_desktop.core.settings import load_settings
    from skelex_desktop.core.workspace import open_workspace

    settings = load_settings(data_dir=args.data_dir, db_url=args.db)
    if args.reader:
        settings.reader = args.reader
    return open_workspace(settings)


def needs_action(name: str) -> Handler:
    """Handler for a command group called without its action."""

    def handler(_args: argparse.Namespace) -> int:
        raise CliError(f"'{name}' needs an action; see skelex-desktop {name} --help", code=2)

    return handler


def iso_date(text: str) -> date:
    """argparse type for YYYY-MM-DD dates."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc
