"""Child process of the single-decision trials: decides the way the window does.

`python -m tests.reliability.decider DATA_DIR COUNT` opens the workspace and runs COUNT review
commands on the session's serialized writer (`SerialExecutor`), one after another as a fast
reader would: `SetLabel` (each its own committed, audited transaction) and, every fifth, the
undo of the decision before (`run_revert`). After each write is committed it prints
`set <label id>` or `undo <label id>` and flushes, so whatever the parent reads was committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import select

from skelex_desktop.core.db.executor import SerialExecutor
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.review.commands import SetLabel
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace

DECISIONS = [("fracture", 1), ("fracture", 0), ("kl_grade", "2"), ("tumour_category", "benign")]


def main(data_dir: Path, count: int) -> None:
    workspace = open_workspace(Settings(data_dir=data_dir, reader="dr.trial"))
    with workspace.db.read() as session:
        images = list(session.scalars(select(Image.id).order_by(Image.id)))
    writer = SerialExecutor()
    last: SetLabel | None = None
    for n in range(count):
        if n % 5 == 4 and last is not None:
            undone = last
            writer.submit(undone.run_revert).result()
            if undone.applied:
                sys.exit(f"undo of label {undone.label_id} failed")
            print(f"undo {undone.label_id}", flush=True)
            last = None
            continue
        task, value = DECISIONS[n % len(DECISIONS)]
        command = SetLabel(workspace.db, "dr.trial", images[n % len(images)], task, value)
        writer.submit(command.run_apply).result()
        if not command.applied:
            sys.exit(f"decision {n} failed")
        print(f"set {command.label_id}", flush=True)
        last = command
    writer.shutdown()
    workspace.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
