"""Child process of head training: `python -m skelex_desktop.core.training.train_worker`.

Reads a dataset .npz written by the parent, cross-validates and fits the heads, writes the
weights .npz and streams one JSON object per line on stdout:
{"event": "progress", "done", "total", "status"}, {"event": "fold", "fold", "metrics"},
{"event": "final", "metrics", "temperatures", "weights", "plots"} or {"event": "error",
"message"}. The ROC and reliability plots (`roc_<task>.png`, `calibration_<task>.png`) of the
out-of-fold predictions are written next to the weights.
The parent owns the database; this process only reads and writes the files it is given.
With `--exit-with-parent` it ends at once when its standard input closes (the parent, which
holds the other end, exited or was killed), whatever it is doing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the child starts light
    from skelex_desktop.core.heads.training_set import HeadDataset
    from skelex_desktop.core.training.head_fit import CrossValidation


def _clean(value: Any) -> Any:
    """JSON-safe metrics: NaN / inf become null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, **_clean(data)}), flush=True)


def run(dataset: Path, out: Path, folds: int, seed: int, threads: int) -> None:
    from skelex_desktop.core.heads.training_set import HeadDataset
    from skelex_desktop.core.training.head_fit import HeadConfig, cross_validate, fit_heads

    data = HeadDataset.load(dataset)
    config = HeadConfig(seed=seed, threads=threads)
    total = folds + 1
    emit("progress", done=0, total=total, status=f"training {len(data.y)} images, fold 1/{folds}")

    def on_fold(fold: int, metrics: dict[str, Any]) -> None:
        emit("fold", fold=fold, metrics=metrics)
        status = f"fold {fold + 2}/{folds}" if fold + 1 < folds else "final fit"
        emit("progress", done=fold + 1, total=total, status=status)

    cv = cross_validate(data, folds, config, on_fold)
    model = fit_heads(data.x, data.y, data.tasks, config)
    model.temperatures = dict(cv.temperatures)
    model.save(out)
    plots = cv_plots(out.parent, data, cv)
    emit("progress", done=total, total=total, status="done")
    emit(
        "final",
        metrics=cv.metrics,
        fold_metrics=cv.fold_metrics,
        temperatures=cv.temperatures,
        weights=str(out),
        plots=[p.name for p in plots],
    )


def cv_plots(folder: Path, data: HeadDataset, cv: CrossValidation) -> list[Path]:
    """ROC and reliability PNGs of every task's out-of-fold logits (labelled images only)."""
    from skelex_desktop.core.heads.plots import head_plots
    from skelex_desktop.core.heads.training_set import MISSING

    paths: list[Path] = []
    for column, task in enumerate(data.tasks):
        known = data.y[:, column] != MISSING
        paths += head_plots(
            folder,
            task.name,
            task.classes,
            data.y[known, column],
            cv.oof_logits[task.name][known],
            cv.temperatures[task.name],
        )
    return paths


def exit_with_parent() -> None:
    """Read standard input to its end (the parent sends nothing), then end this process.
    It reads the file descriptor, not `sys.stdin`: a daemon thread blocked inside a buffered
    reader would abort the interpreter's normal exit."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train_worker")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when standard input closes (the parent holds it open while it waits)",
    )
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        threading.Thread(target=exit_with_parent, name="lifeline", daemon=True).start()
    try:
        run(Path(args.dataset), Path(args.out), args.folds, args.seed, args.threads)
    except Exception as exc:  # reported to the parent as one event, then a failing exit
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
