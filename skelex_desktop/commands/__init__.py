"""CLI command handlers, one module per feature; `register_all` builds the command tree."""

from __future__ import annotations

from skelex_desktop.commands import (
    audit_cmd,
    db_cmd,
    export_cmd,
    finetune_cmd,
    ingest_cmd,
    label_cmd,
    model_cmd,
    review_cmd,
    synth_cmd,
    task_cmd,
    team_cmd,
    train_cmd,
    worker_cmd,
)
from skelex_desktop.commands.common import AddCommand

MODULES = (
    ingest_cmd,
    synth_cmd,
    label_cmd,
    task_cmd,
    model_cmd,
    export_cmd,
    train_cmd,
    finetune_cmd,
    db_cmd,
    audit_cmd,
    review_cmd,
    team_cmd,
    worker_cmd,
)


def register_all(add: AddCommand) -> None:
    for module in MODULES:
        module.register(add)
