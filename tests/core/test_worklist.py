"""Worklist filters, sorting and paging against a Python oracle on a few hundred rows."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from skelex_desktop.core.db.models import Image, Patient, Series, Study
from skelex_desktop.core.review.worklist import SORT_KEYS, WorklistQuery, query_worklist

STATUSES = ["new", "analysed", "in_review", "confirmed"]
PARTS = ["HAND", "WRIST", "KNEE", "FOOT"]


@pytest.fixture
def populated(db):  # noqa: ANN001, ANN201 - fixtures
    rng = random.Random(3)
    expected = []
    with db.write() as session:
        for p in range(30):
            patient = Patient(patient_id=f"P{p:03d}", name=f"Name{p % 7}^Given")
            session.add(patient)
            for s in range(rng.randint(1, 3)):
                study = Study(
                    patient=patient,
                    study_instance_uid=f"1.2.{p}.{s}",
                    study_date=None
                    if rng.random() < 0.1
                    else date(2024, 1, 1) + timedelta(days=rng.randint(0, 300)),
                    accession_number=f"ACC{p}{s}",
                )
                series = Series(study=study, series_instance_uid=f"1.2.{p}.{s}.1", modality="CR")
                n_images = rng.randint(1, 5)
                for i in range(n_images):
                    image = Image(
                        series=series,
                        sop_instance_uid=f"1.2.{p}.{s}.1.{i}",
                        file_path="/x.dcm",
                        content_hash=f"h{p}.{s}.{i}",
                        rows=10,
                        cols=10,
                        modality=rng.choice(["CR", "DX"]),
                        body_part=rng.choice(PARTS),
                        view=rng.choice(["PA", "AP", "LAT"]),
                        laterality=rng.choice(["L", "R", ""]),
                        status=rng.choice(STATUSES),
                        ai_score=None if rng.random() < 0.2 else round(rng.random(), 4),
                        reader=rng.choice(["", "dr.a", "dr.b"]),
                    )
                    session.add(image)
                    expected.append((image, patient, study, n_images))
        session.flush()
        rows = [
            {
                "image_id": image.id,
                "patient_id": patient.patient_id,
                "patient_name": patient.name,
                "study_date": study.study_date,
                "accession": study.accession_number,
                "body_part": image.body_part,
                "view": image.view,
                "laterality": image.laterality,
                "modality": image.modality,
                "status": image.status,
                "ai_score": image.ai_score,
                "reader": image.reader,
                "images_in_study": n,
            }
            for image, patient, study, n in expected
        ]
    assert len(rows) > 150
    return rows


def _sorted_ids(rows: list[dict], key: str, descending: bool) -> list[int]:
    present = [r for r in rows if r[key] is not None]
    missing = [r for r in rows if r[key] is None]
    present.sort(key=lambda r: (r[key], r["image_id"]), reverse=descending)
    missing.sort(key=lambda r: r["image_id"], reverse=descending)
    return [r["image_id"] for r in present + missing]


@pytest.mark.parametrize(
    "key",
    [
        "study_date",
        "patient_id",
        "patient_name",
        "body_part",
        "view",
        "laterality",
        "status",
        "ai_score",
        "reader",
        "modality",
        "images_in_study",
        "image_id",
    ],
)
@pytest.mark.parametrize("descending", [True, False])
def test_sort_and_paging(db, populated, key: str, descending: bool) -> None:  # noqa: ANN001
    ids: list[int] = []
    offset = 0
    while True:
        with db.read() as session:
            page = query_worklist(
                session, WorklistQuery(sort=key, descending=descending, offset=offset, limit=37)
            )
        assert page.total == len(populated)
        ids.extend(row.image_id for row in page.rows)
        offset += 37
        if not page.rows:
            break
    assert ids == _sorted_ids(populated, key, descending)


def test_filters(db, populated) -> None:  # noqa: ANN001
    cases = [
        (WorklistQuery(status="confirmed"), lambda r: r["status"] == "confirmed"),
        (WorklistQuery(status=["new", "analysed"]), lambda r: r["status"] in ("new", "analysed")),
        (WorklistQuery(modality="DX"), lambda r: r["modality"] == "DX"),
        (
            WorklistQuery(body_part="KNEE", laterality="L"),
            lambda r: r["body_part"] == "KNEE" and r["laterality"] == "L",
        ),
        (
            WorklistQuery(date_from=date(2024, 3, 1), date_to=date(2024, 6, 30)),
            lambda r: (
                r["study_date"] is not None
                and date(2024, 3, 1) <= r["study_date"] <= date(2024, 6, 30)
            ),
        ),
        (WorklistQuery(text="p01"), lambda r: "p01" in r["patient_id"].lower()),
        (WorklistQuery(text="name3"), lambda r: "name3" in r["patient_name"].lower()),
        (
            WorklistQuery(text="ACC12"),
            lambda r: "ACC12" in r["accession"] or "acc12" in r["patient_id"].lower(),
        ),
        (WorklistQuery(text="wri"), lambda r: "wri" in r["body_part"].lower()),
        (WorklistQuery(text="100%_"), lambda r: False),
        (
            WorklistQuery(status="in_review", body_part="HAND", text="P0"),
            lambda r: (
                r["status"] == "in_review"
                and r["body_part"] == "HAND"
                and "p0" in r["patient_id"].lower()
            ),
        ),
    ]
    for query, keep in cases:
        query.limit = 1000
        with db.read() as session:
            page = query_worklist(session, query)
        wanted = sorted(r["image_id"] for r in populated if keep(r))
        assert sorted(row.image_id for row in page.rows) == wanted, query
        assert page.total == len(wanted)


@pytest.mark.parametrize("text", ["p0", "name3", "ACC12", "wri", "KNEE", "zzz"])
def test_text_search_pages_alike_with_few_or_many_matches(db, populated, monkeypatch, text):  # noqa: ANN001
    """Few matches are collected and sorted, many are found in sort order: same pages."""
    from skelex_desktop.core.review import worklist

    pages = []
    for limit in (10**9, 0):  # every match sorted / every search walked in sort order
        monkeypatch.setattr(worklist, "SORT_MATCHES_UP_TO", limit)
        with db.read() as session:
            pages.append(
                [
                    query_worklist(session, WorklistQuery(text=text, offset=o, limit=7))
                    for o in (0, 7)
                ]
            )
    assert pages[0] == pages[1]
    assert pages[0][0].total > 0 or text == "zzz"


def test_row_contents_and_json(db, populated) -> None:  # noqa: ANN001
    with db.read() as session:
        page = query_worklist(session, WorklistQuery(sort="image_id", descending=False, limit=3))
    by_id = {r["image_id"]: r for r in populated}
    for row in page.rows:
        source = by_id[row.image_id]
        assert (row.patient_id, row.images_in_study, row.ai_score) == (
            source["patient_id"],
            source["images_in_study"],
            source["ai_score"],
        )
        assert row.study_uid.startswith("1.2.")
        payload = row.to_json()
        assert payload["study_date"] in (
            None,
            source["study_date"] and source["study_date"].isoformat(),
        )


def test_unknown_sort_key_is_refused(db) -> None:  # noqa: ANN001
    with db.read() as session, pytest.raises(ValueError, match="unknown worklist sort key"):
        query_worklist(session, WorklistQuery(sort="nonsense"))
    assert "study_date" in SORT_KEYS


def test_empty_database(db) -> None:  # noqa: ANN001
    with db.read() as session:
        page = query_worklist(session, WorklistQuery())
    assert page.total == 0 and page.rows == []
