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


READING_COMMANDS = frozenset(
    {
        "worklist",
        "label list",
        "db info",
        "task list",
        "model-version list",
        "export",
        "audit report",
        "team agreement",
    }
)
"""Commands that only read the database: they open it without writing (no waiting for another
process's write lock), read-only when the file is not writable for this user."""

_ACTIONS = (
    "label_command",
    "db_command",
    "task_command",
    "version_command",
    "model_command",
    "audit_command",
    "review_command",
    "team_command",
    "queue_command",
)


def command_path(args: argparse.Namespace) -> str:
    """The command and its action as typed, e.g. 'label list', 'worklist'."""
    command = getattr(args, "command", None) or ""
    action = next((getattr(args, name) for name in _ACTIONS if getattr(args, name, None)), None)
    return f"{command} {action}" if action else command


def open_ws(args: argparse.Namespace):  # noqa: ANN201 - Workspace is imported lazily
    """The workspace selected by the global options (--data-dir, --db, --reader); a reading
    command (`READING_COMMANDS`) opens it without writing. A database that cannot be opened
    is reported as one line naming the file and the way out."""
    from skelex_desktop.core.db.engine import DatabaseFileError
    from skelex_desktop.core.settings import load_settings
    from skelex_desktop.core.workspace import open_workspace

    settings = load_settings(data_dir=args.data_dir, db_url=args.db)
    if args.reader:
        settings.reader = args.reader
    try:
        return open_workspace(settings, writes=command_path(args) not in READING_COMMANDS)
    except DatabaseFileError as exc:
        raise CliError(str(exc)) from exc


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


def positive_int(text: str) -> int:
    """argparse type for a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
