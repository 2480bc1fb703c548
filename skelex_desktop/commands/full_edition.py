"""The reader edition's answer to a training command: it needs the full edition, said plainly."""

from __future__ import annotations

from skelex_desktop.commands.common import CliError


def require_full_edition(what: str) -> None:
    """Raise CliError when this installation lacks torch (the reader edition)."""
    from skelex_desktop.core.training.edition import is_full_edition, needs_full_edition

    if not is_full_edition():
        raise CliError(needs_full_edition(what))
