"""Training a head from the application: a child process does the work, this side owns the
database.

`train_head(db, settings, tasks, ...)` assembles the labelled embeddings, starts
`python -m skelex_desktop.core.training.train_worker` and follows its JSON lines. Only when the
child reports its final result are the weights moved to `data_dir/heads/<name>-<version>/`
and the `ModelVersion` and its predictions stored, in one transaction; a crash, an error or a
cancel (which kills the child) leaves no version, no predictions and no head folder behind.
The child watches its standard input, a pipe only this process writes to, and exits when it
closes: a parent killed outright (kill -9) leaves no training child running.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import ModelVersion, Prediction, Task
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.training_set import HeadDataset, assemble_dataset
from skelex_desktop.core.heads.versions import (
    EMBEDDING_MODEL,
    HEAD_FILE,
    latest_version,
    next_version,
    set_active,
)
from skelex_desktop.core.inference.embeddings import cached_embeddings, image_refs
from skelex_desktop.core.inference.interfaces import ModelManifest
from skelex_desktop.core.inference.package import sha256_bytes
from skelex_desktop.core.progress import Cancelled, Progress
from skelex_desktop.core.settings import Settings

WORKER = "skelex_desktop.core.training.train_worker"
METHOD = "task head"


class TrainingError(RuntimeError):
    """The training child failed; the message is its reason."""


@dataclass
class TrainResult:
    """A stored head version and what it reported."""

    name: str
    version: str
    model_version_id: int
    folder: Path
    metrics: dict[str, Any]
    label_counts: dict[str, Any]
    predictions: int
    plots: list[Path] = field(default_factory=list)  # roc_<task>.png, calibration_<task>.png

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["folder"] = str(self.folder)
        data["plots"] = [str(p) for p in self.plots]
        return data


def head_name(task_names: list[str]) -> str:
    """`head-<task>`, or `head-<a>+<b>` for a multi-head model."""
    return "head-" + "+".join(task_names)


def train_head(
    db: Database,
    settings: Settings,
    task_names: list[str],
    folds: int = 5,
    seed: int = 0,
    model: str | None = None,
    progress: Progress | None = None,
    who: str = "",
) -> TrainResult:
    """Train, store and activate a new version of the head for `task_names`."""
    from skelex_desktop.core.inference.registry import Registry

    manifest = Registry.from_settings(settings).manifest(model or settings.active_model)
    data_dir = Path(settings.data_dir)
    if progress is not None:
        progress.set_status("collecting labels")
    data = assemble_dataset(db, data_dir, manifest, task_names, min_per_class=folds)
    staging = data_dir / "heads" / f".staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        data.save(staging / "dataset.npz")
        final = run_worker(
            staging / "dataset.npz",
            staging / HEAD_FILE,
            folds,
            seed,
            int(getattr(settings, "inference_threads", 2)),
            progress,
        )
        (staging / "dataset.npz").unlink()
        return _store(
            db, data_dir, data, staging, final, manifest, folds, seed, who or settings.reader
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_worker(
    dataset: Path,
    out: Path,
    folds: int,
    seed: int,
    threads: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the training child and return its final event; Cancelled or TrainingError else."""
    command = [
        sys.executable,
        "-m",
        WORKER,
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--folds",
        str(folds),
        "--seed",
        str(seed),
        "--threads",
        str(threads),
        "--exit-with-parent",
    ]
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,  # its lifeline: held open until the child is done
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []
    readers = [
        threading.Thread(target=_pump, args=(child.stdout, lines.put, True), daemon=True),
        threading.Thread(target=_pump, args=(child.stderr, errors.append), daemon=True),
    ]
    for reader in readers:
        reader.start()
    final: dict[str, Any] | None = None
    message = ""
    try:
        while True:
            if progress is not None and progress.cancelled():
                raise Cancelled("training cancelled by the user")
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            event = _parse(line)
            if event is None:
                continue
            kind = event.get("event")
            if kind == "progress" and progress is not None:
                if event.get("done") == 0:
                    progress.set_total(int(event.get("total", 0)))
                else:
                    progress.advance(1)
                progress.set_status(str(event.get("status", "")))
            elif kind == "fold" and hasattr(progress, "report"):
                _report_fold(progress, int(event.get("fold", 0)), event.get("metrics") or {})
            elif kind == "final":
                final = event
            elif kind == "error":
                message = str(event.get("message", ""))
        code = child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
        if child.stdin is not None:
            child.stdin.close()
    if code != 0 or final is None or not out.is_file():
        tail = message or next((e.strip() for e in reversed(errors) if e.strip()), "")
        raise TrainingError(f"training failed (exit status {code})" + (f": {tail}" if tail else ""))
    return final


LIVE_METRICS = ("auroc", "balanced_accuracy", "mae")


def _report_fold(progress: Any, fold: int, metrics: dict[str, Any]) -> None:
    """Each task's fold metrics as points of live curves ("<task> <metric>" per fold)."""
    for task, values in metrics.items():
        for key in LIVE_METRICS:
            value = (values or {}).get(key)
            if value is not None:
                progress.report(f"{task} {key}", fold + 1, float(value))


def _pump(
    stream: IO[str] | None, put: Callable[[str | None], object], end_with_none: bool = False
) -> None:
    """Hand every line of `stream` to `put` (then None, to mark the end, when asked)."""
    if stream is not None:
        for line in stream:
            put(line)
    if end_with_none:
        put(None)


def _parse(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _store(
    db: Database,
    data_dir: Path,
    data: HeadDataset,
    staging: Path,
    final: dict[str, Any],
    manifest: ModelManifest,
    folds: int,
    seed: int,
    who: str,
) -> TrainResult:
    """Predict every embedded image, then move the files and write the version in one go."""
    weights = HeadWeights.load(staging / HEAD_FILE)
    refs = image_refs(db)
    vectors = cached_embeddings(data_dir, refs, manifest)
    ids = sorted(vectors)
    import numpy as np

    probabilities = weights.probabilities(np.stack([vectors[i] for i in ids])) if ids else {}
    name = head_name([t.name for t in data.tasks])
    file_sha = sha256_bytes((staging / HEAD_FILE).read_bytes())
    plot_names = [str(p) for p in final.get("plots", []) if (staging / str(p)).is_file()]
    plot_sha = {p: sha256_bytes((staging / p).read_bytes()) for p in plot_names}
    metrics = {
        "cv": final.get("metrics", {}),
        "folds": folds,
        "seed": seed,
        "fold_metrics": final.get("fold_metrics", []),
        "embedding_model": f"{manifest.name} {manifest.version}",
        "images": len(data.y),
    }
    folder: Path | None = None
    try:
        with db.write() as session:
            version = next_version(session, name)
            parent = latest_version(session, name)
            folder = data_dir / "heads" / f"{name}-{version}"
            if folder.exists():
                raise TrainingError(f"{folder} already exists; remove it or rename the head")
            staging.rename(folder)
            created = ModelVersion(
                name=name,
                version=version,
                parent_id=parent.id if parent else None,
                file_sha256={
                    HEAD_FILE: file_sha,
                    **plot_sha,
                    EMBEDDING_MODEL: manifest.embedding_identity,
                },
                metrics=metrics,
                label_counts=data.counts,
            )
            session.add(created)
            session.flush()
            set_active(session, created)
            task_ids = {n: i for n, i in session.execute(select(Task.name, Task.id))}
            for task in data.tasks:
                temperature = weights.temperatures.get(task.name, 1.0)
                for row, image_id in enumerate(ids):
                    p = probabilities[task.name][row]
                    session.add(
                        head_prediction(
                            image_id,
                            created.id,
                            task_ids[task.name],
                            task.kind,
                            task.classes,
                            p,
                            name,
                            version,
                            temperature,
                        )
                    )
            audit.record(
                session,
                who or "skelex-desktop",
                "model_version.train",
                "model_version",
                created.id,
                before=None,
                after={"name": name, "version": version, "images": len(data.y)},
            )
            created_id = created.id
    except BaseException:
        if folder is not None and folder.exists() and not staging.exists():
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return TrainResult(
        name,
        version,
        created_id,
        folder,
        metrics,
        data.counts,
        len(ids) * len(data.tasks),
        [folder / p for p in plot_names],
    )


def head_prediction(
    image_id: int,
    version_id: int,
    task_id: int,
    kind: str,
    classes: list[str],
    p: Iterable[float],
    name: str,
    version: str,
    temperature: float,
) -> Prediction:
    probs = {c: float(v) for c, v in zip(classes, p, strict=True)}
    score = probs[classes[1]] if kind == "binary" else max(probs.values())
    return Prediction(
        image_id=image_id,
        model_version_id=version_id,
        task_id=task_id,
        probabilities=probs,
        score=score,
        details={"method": METHOD, "head": f"{name} {version}", "temperature": temperature},
    )
