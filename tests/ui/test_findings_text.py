"""The AI line of a findings row says which measure makes a suggestion weak."""

from __future__ import annotations

from dataclasses import replace

from skelex_desktop.core.review.decisions import TaskState
from skelex_desktop.ui.panels.findings_panel import describe_suggestion

ZERO_SHOT = TaskState(
    name="abnormal",
    title="Abnormal",
    kind="binary",
    classes=["normal", "abnormal"],
    prediction_id=1,
    suggestion=1,
    probability=None,
    score=0.031,
    threshold=0.029,
    method="zero-shot error map",
    driver=None,
    cv_auroc=None,
    calibration_auroc=0.58,
    label_id=None,
    value=None,
    uncertain=False,
    reader="",
)


def test_weak_map_and_weak_head_are_named_as_such() -> None:
    text = describe_suggestion(ZERO_SHOT)
    assert text.startswith("AI (zero-shot error map), calibration AUROC 0.58: abnormal")
    assert "score 0.031 > 0.029" in text and text.endswith(
        "weak map, not accepted by Enter (AUROC < 0.70)"
    )
    head = replace(ZERO_SHOT, method="task head", cv_auroc=0.52, threshold=None, probability=0.7)
    text = describe_suggestion(head)
    assert "CV AUROC 0.52" in text and "(p = 0.70)" in text
    assert text.endswith("weak head, not accepted by Enter (AUROC < 0.70)")
    good = replace(ZERO_SHOT, calibration_auroc=0.93)
    assert "not accepted" not in describe_suggestion(good)
