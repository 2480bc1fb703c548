"""The label schema: tasks as data (resources/label_schema.json), validated and stored."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.models import Task
from skelex_desktop.core.domain import TaskKind
from skelex_desktop.core.resources import resources_dir

SCHEMA_FILE = "label_schema.json"
SCOPES = ("image", "study")


class SchemaError(ValueError):
    """A task definition that cannot be used; the message names the task and the problem."""


@dataclass(frozen=True)
class TaskSpec:
    """A task definition before it is stored."""

    name: str
    kind: TaskKind
    classes: list[str] = field(default_factory=list)
    title: str = ""
    description: str = ""
    required: bool = False  # Enter confirms an image only when this task has a decision
    scope: str = "image"  # "study": one decision for the whole study

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        name = str(data.get("name", "")).strip()
        if not name or not name.replace("_", "").isalnum():
            raise SchemaError(f"task name {name!r} must be letters, digits and underscores")
        try:
            kind = TaskKind(data.get("kind", ""))
        except ValueError as exc:
            kinds = ", ".join(k.value for k in TaskKind)
            raise SchemaError(f"task {name!r}: kind must be one of {kinds}") from exc
        classes = [str(c) for c in data.get("classes", [])]
        if len(set(classes)) != len(classes):
            raise SchemaError(f"task {name!r}: classes must be distinct")
        if kind == TaskKind.BINARY and len(classes) not in (0, 2):
            raise SchemaError(f"task {name!r}: a binary task has two classes (negative, positive)")
        if kind in (TaskKind.MULTICLASS, TaskKind.ORDINAL) and len(classes) < 2:
            raise SchemaError(f"task {name!r}: a {kind.value} task needs at least two classes")
        if kind == TaskKind.BINARY and not classes:
            classes = ["negative", "positive"]
        return cls(
            name=name,
            kind=kind,
            classes=classes,
            title=str(data.get("title") or name.replace("_", " ").capitalize()),
            description=str(data.get("description", "")),
            required=_flag(name, data.get("required", False)),
            scope=_scope(name, data.get("scope", "image")),
        )


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"task {name!r}: 'required' must be true or false, not {value!r}")
    return value


def _scope(name: str, value: object) -> str:
    if value not in SCOPES:
        raise SchemaError(f"task {name!r}: 'scope' must be 'image' or 'study', not {value!r}")
    return str(value)


def load_schema_file(path: Path | None = None) -> list[TaskSpec]:
    """Task specs from a schema JSON file (default: the bundled one)."""
    path = path or resources_dir() / SCHEMA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SchemaError(f"cannot read label schema {path}: {exc}") from exc
    specs = [TaskSpec.from_dict(t) for t in data.get("tasks", [])]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SchemaError(f"label schema {path}: duplicate task names {duplicates}")
    return specs


def add_task(session: Session, spec: TaskSpec, who: str) -> Task:
    """Store a new task at the end of the schema; a taken name is refused."""
    if session.scalar(select(Task.id).where(Task.name == spec.name)) is not None:
        raise SchemaError(f"a task named {spec.name!r} already exists")
    order = (session.scalar(select(func.max(Task.order))) or 0) + 1
    task = Task(
        name=spec.name,
        title=spec.title,
        kind=spec.kind.value,
        classes=list(spec.classes),
        order=order,
        description=spec.description,
        required=spec.required,
        scope=spec.scope,
    )
    session.add(task)
    session.flush()
    audit.record(session, who, "task.add", "task", task.id, after=task_dict(task))
    return task


def seed_default_schema(session: Session, who: str, path: Path | None = None) -> int:
    """Load the default schema into an empty tasks table; returns how many tasks were added."""
    if session.scalar(select(func.count(Task.id))):
        return 0
    specs = load_schema_file(path)
    for spec in specs:
        add_task(session, spec, who)
    return len(specs)


def list_tasks(session: Session) -> list[Task]:
    return list(session.scalars(select(Task).order_by(Task.order, Task.id)))


def task_dict(task: Task) -> dict[str, Any]:
    return {
        "name": task.name,
        "title": task.title,
        "kind": task.kind,
        "classes": list(task.classes),
        "order": task.order,
        "description": task.description,
        "required": bool(task.required),
        "scope": task.scope,
    }
