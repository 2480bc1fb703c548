"""The default label schema is data, loaded on first start; users can add tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent
from skelex_desktop.core.review.schema import (
    SchemaError,
    TaskSpec,
    add_task,
    list_tasks,
    load_schema_file,
    seed_default_schema,
)


def test_default_schema_is_loaded_on_first_start(db: Database) -> None:
    with db.read() as s:
        tasks = {t.name: t for t in list_tasks(s)}
    assert list(tasks) == [
        "abnormal",
        "fracture",
        "implant",
        "tumour_category",
        "kl_grade",
        "anatomical_location",
    ]
    assert tasks["tumour_category"].classes == ["malignant", "intermediate", "benign", "none"]
    assert tasks["kl_grade"].kind == "ordinal" and tasks["kl_grade"].classes == list("01234")
    locations = tasks["anatomical_location"].classes
    assert len(locations) == 29 and "carpal bones" in locations and "ulna diaphysis" in locations
    with db.write() as s:
        assert seed_default_schema(s, who="x") == 0  # never twice


def test_user_can_add_a_task_and_names_stay_unique(db: Database) -> None:
    with db.write() as s:
        task = add_task(s, TaskSpec.from_dict({"name": "bone_age", "kind": "regression"}), "dr.a")
        assert task.order == 7
    with db.read() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "task.add").limit(1))
    with pytest.raises(SchemaError, match="already exists"), db.write() as s:
        add_task(s, TaskSpec.from_dict({"name": "bone_age", "kind": "regression"}), "dr.a")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x y", "kind": "binary"}, "letters, digits"),
        ({"name": "x", "kind": "fuzzy"}, "kind must be one of"),
        ({"name": "x", "kind": "multiclass", "classes": ["a"]}, "at least two classes"),
        ({"name": "x", "kind": "binary", "classes": ["a", "b", "c"]}, "two classes"),
        ({"name": "x", "kind": "ordinal", "classes": ["a", "a"]}, "distinct"),
    ],
)
def test_bad_task_definitions_are_explained(spec: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        TaskSpec.from_dict(spec)


def test_schema_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "schema.json"
    bad.write_text(json.dumps({"tasks": [{"name": "a", "kind": "binary"}] * 2}))
    with pytest.raises(SchemaError, match="duplicate task names"):
        load_schema_file(bad)
    bad.write_text("[")
    with pytest.raises(SchemaError, match="cannot read label schema"):
        load_schema_file(bad)
