"""Studies, not single images: the other views of a study and the patient's priors."""

from __future__ import annotations

from datetime import date

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Study
from skelex_desktop.core.review.studies import (
    companions,
    matching_view,
    prior_studies,
    study_images,
)
from tests.core.factories import add_image


def _image(s, n: int, patient: str, study: str, when: date | None, part: str, view: str) -> int:  # noqa: ANN001
    image = add_image(
        s, sop=f"1.2.9.{n}", patient_id=patient, study_uid=study, series_uid=f"{study}.1"
    )
    image.body_part, image.view, image.laterality = part, view, "R"
    s.flush()
    s.get(Study, image.series.study_id).study_date = when
    return image.id


def test_study_views_priors_and_companions(db: Database) -> None:
    with db.write() as s:
        ap = _image(s, 1, "P1", "1.2.9.100", date(2024, 1, 1), "KNEE", "AP")
        lat = _image(s, 2, "P1", "1.2.9.100", date(2024, 1, 1), "KNEE", "LAT")
        old_lat = _image(s, 3, "P1", "1.2.9.101", date(2023, 1, 1), "KNEE", "LAT")
        old_ap = _image(s, 4, "P1", "1.2.9.101", date(2023, 1, 1), "KNEE", "AP")
        _image(s, 5, "P1", "1.2.9.102", date(2022, 1, 1), "HAND", "PA")  # another body part
        older_ap = _image(s, 6, "P1", "1.2.9.103", date(2020, 1, 1), "KNEE", "AP")
        _image(s, 7, "P1", "1.2.9.104", date(2025, 1, 1), "KNEE", "AP")  # later: no prior
        _image(s, 8, "P2", "1.2.9.105", date(2019, 1, 1), "KNEE", "AP")  # another patient
        left = _image(s, 9, "P1", "1.2.9.106", date(2021, 1, 1), "KNEE", "AP")
        s.get(Image, left).laterality = "L"  # the other knee: not this knee's prior
    with db.read() as s:
        assert [d.image_id for d in study_images(s, ap)] == [ap, lat]
        priors = prior_studies(s, ap)
        assert [p.study_uid for p in priors] == ["1.2.9.101", "1.2.9.103"]  # newest first
        assert [d.image_id for d in priors[0].images] == [old_lat, old_ap]
        current = study_images(s, ap)[0]
        assert matching_view(priors[0].images, current).image_id == old_ap
        shown = companions(s, ap, with_prior=True)
        assert [(c.image.image_id, c.prior) for c in shown] == [(old_ap, True), (lat, False)]
        assert shown[0].caption == "PRIOR 2023-01-01 R AP KNEE"
        assert [c.image.image_id for c in companions(s, ap, with_prior=False)] == [lat]
        assert prior_studies(s, older_ap) == []
