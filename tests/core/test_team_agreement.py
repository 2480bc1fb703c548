"""Issue #19, agreement: Cohen's kappa (unweighted, linear and quadratic weighted), Fleiss' kappa
and their bootstrap intervals against hand-computed values and scikit-learn; the readers'
current decisions read from the database (made through `label import` with a reader column and
through the review session the window uses); `team agreement` on the command line."""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from skelex_desktop.cli import build_parser, main
from skelex_desktop.core.review.session import ReviewSession
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.team import agreement
from skelex_desktop.core.team.agreement import (
    AgreementError,
    cohen_estimate,
    cohen_kappa,
    contingency,
    disagreement_weights,
    fleiss_counts,
    fleiss_estimate,
    fleiss_kappa,
    fleiss_observed,
)
from skelex_desktop.core.workspace import open_workspace
from tests.core.factories import add_image

# --- hand-computed values ---------------------------------------------------------------------


def test_cohen_classic_two_by_two() -> None:
    """50 applications read by A and B: 20 both yes, 5 A yes B no, 10 A no B yes, 15 both no.
    p_o = 35/50 = 0.7; A says yes 25/50, B 30/50: p_e = 0.5*0.6 + 0.5*0.4 = 0.5;
    kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4."""
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert contingency(a, b, 2).tolist() == [[15, 10], [5, 20]]
    assert cohen_kappa(a, b, 2) == pytest.approx(0.4, abs=1e-12)
    estimate = cohen_estimate(a, b, 2, resamples=500)
    assert estimate.agreement == pytest.approx(0.7) and estimate.n == 50
    assert estimate.low < 0.4 < estimate.high


def test_weighted_kappa_by_hand() -> None:
    """Five images, three ordered grades; A = 0 0 1 1 2, B = 0 1 1 2 2 (two one-step
    disagreements). Margins A (2, 2, 1), B (1, 2, 2); expected counts E_ij = A_i B_j / 5.
    - unweighted: p_o = 3/5, p_e = (2*1 + 2*2 + 1*2)/25 = 8/25, kappa = (15/25 - 8/25)/(17/25) = 7/17
    - linear (1/2 per step): observed 2 * 1/2 = 1; expected: one step E01+E10+E12+E21 = 2.4
      times 1/2, two steps E02+E20 = 1.0 times 1: 2.2; kappa = 1 - 1/2.2 = 6/11
    - quadratic (1/4 per step, 1 for two): observed 2/4 = 0.5; expected 2.4/4 + 1.0 = 1.6;
      kappa = 1 - 0.5/1.6 = 11/16"""
    a, b = [0, 0, 1, 1, 2], [0, 1, 1, 2, 2]
    assert cohen_kappa(a, b, 3) == pytest.approx(7 / 17, abs=1e-12)
    assert cohen_kappa(a, b, 3, "linear") == pytest.approx(6 / 11, abs=1e-12)
    assert cohen_kappa(a, b, 3, "quadratic") == pytest.approx(11 / 16, abs=1e-12)
    # a class never used (a fourth grade) changes the weights' scale only, not the kappa
    assert cohen_kappa(a, b, 4, "quadratic") == pytest.approx(11 / 16, abs=1e-12)
    assert disagreement_weights(3, "quadratic").tolist() == [
        [0.0, 0.25, 1.0],
        [0.25, 0.0, 0.25],
        [1.0, 0.25, 0.0],
    ]


FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_fleiss_worked_example() -> None:
    """The worked example usually reproduced with Fleiss (1971) (e.g. Wikipedia's; the paper's
    own table is 30 patients x 6 psychiatrists): 10 subjects, 14 raters, 5 categories.
    By hand: sum over subjects of (sum_j n_ij^2 - 14) = 182+46+56+80+60+84+44+32+52+52 = 688,
    P = 688 / (10 * 14 * 13) = 0.378; category totals 20, 28, 39, 21, 32 of 140, so
    P_e = (20^2 + 28^2 + 39^2 + 21^2 + 32^2) / 140^2 = 4170/19600 = 0.213; kappa = 0.210."""
    p_bar, p_e = Fraction(688, 1820), Fraction(4170, 19600)
    expected = float((p_bar - p_e) / (1 - p_e))
    assert fleiss_observed(FLEISS_TABLE) == pytest.approx(float(p_bar), abs=1e-12)
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(expected, abs=1e-12)
    assert round(fleiss_kappa(FLEISS_TABLE), 3) == 0.210


def test_fleiss_of_two_readers_is_scotts_pi() -> None:
    """With two ratings per image Fleiss' kappa is Scott's pi: (p_o - p_e) / (1 - p_e) with p_e
    from the pooled margins of both readers; computed here the long way."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        q = int(rng.integers(2, 6))
        a = rng.integers(0, q, 40)
        b = np.where(rng.random(40) < 0.5, a, rng.integers(0, q, 40))
        p_o = float(np.mean(a == b))
        pooled = [(np.sum(a == c) + np.sum(b == c)) / 80 for c in range(q)]
        p_e = float(sum(p * p for p in pooled))
        counts = fleiss_counts(np.stack([a, b], axis=1), q)
        assert fleiss_kappa(counts) == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-12)


def test_cohen_matches_scikit_learn_on_random_data() -> None:
    rng = np.random.default_rng(2026)
    for trial in range(60):
        q = int(rng.integers(2, 7))
        n = int(rng.integers(5, 300))
        used = max(2, q - int(rng.integers(0, 2)))  # sometimes a category is never used
        a = rng.integers(0, used, n)
        b = np.where(rng.random(n) < rng.random(), a, rng.integers(0, used, n))
        for weights in ("none", "linear", "quadratic"):
            ours = cohen_kappa(a, b, q, weights)  # type: ignore[arg-type]
            theirs = cohen_kappa_score(
                a, b, labels=list(range(q)), weights=None if weights == "none" else weights
            )
            assert ours == pytest.approx(theirs, abs=1e-10), (trial, weights)


# --- edge cases -------------------------------------------------------------------------------


def test_constant_readers_give_nan_with_a_reason() -> None:
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1], 2))
    estimate = cohen_estimate([1, 1, 1], [1, 1, 1], 2, classes=["no fracture", "fracture"])
    assert math.isnan(estimate.value) and estimate.agreement == 1.0 and estimate.n == 3
    assert (
        "'fracture' for every image" in estimate.reason
        and "chance agreement is 1" in estimate.reason
    )
    assert estimate.to_json()["value"] is None and estimate.to_json()["ci_low"] is None
    fleiss = fleiss_estimate(np.array([[3, 0], [3, 0]]), classes=["normal", "abnormal"])
    assert math.isnan(fleiss.value) and "'normal'" in fleiss.reason
    # constant but different readers: chance agreement 0, kappa defined (0)
    assert cohen_kappa([0, 0, 0], [1, 1, 1], 2) == 0.0
    # one constant reader, one not: kappa 0, not undefined
    assert cohen_kappa([0, 0, 0, 0], [0, 1, 0, 1], 2) == pytest.approx(0.0)


def test_no_images_and_bad_input() -> None:
    empty = cohen_estimate([], [], 3)
    assert empty.n == 0 and math.isnan(empty.value) and empty.reason
    assert fleiss_estimate(np.zeros((0, 3), np.int64)).reason == "no image read by every reader"
    with pytest.raises(AgreementError, match="same number of ratings"):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))
    with pytest.raises(AgreementError, match="category indices"):
        cohen_kappa([0, 3], [0, 1], 3)
    with pytest.raises(AgreementError, match="weights"):
        disagreement_weights(3, "cubic")  # type: ignore[arg-type]


# --- bootstrap --------------------------------------------------------------------------------


def test_cohen_interval_is_the_percentile_interval_of_resampled_images() -> None:
    """The same draws, recomputed the slow way with scikit-learn per resample."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, 30)
    b = np.where(rng.random(30) < 0.6, a, rng.integers(0, 4, 30))
    key = ("kl_grade", "dr.a", "dr.b")
    estimate = cohen_estimate(a, b, 4, "quadratic", resamples=400, seed=5, key=key)
    draws = agreement._rng(5, "cohen", "quadratic", *key).integers(0, 30, size=(400, 30))
    values = []
    for rows in draws:
        if len(set(a[rows])) == 1 and set(a[rows]) == set(b[rows]):
            continue  # undefined: both readers one and the same category
        values.append(cohen_kappa_score(a[rows], b[rows], labels=range(4), weights="quadratic"))
    low, high = np.quantile(values, [0.025, 0.975])
    assert estimate.low == pytest.approx(low, abs=1e-10)
    assert estimate.high == pytest.approx(high, abs=1e-10)
    assert estimate.undefined_resamples == 400 - len(values)
    assert estimate.low <= estimate.value <= estimate.high


def test_fleiss_interval_the_slow_way() -> None:
    counts = FLEISS_TABLE
    estimate = fleiss_estimate(counts, resamples=300, seed=2, key=("task",))
    draws = agreement._rng(2, "fleiss", "task").integers(0, 10, size=(300, 10))
    values = []
    for rows in draws:
        sample = counts[rows]
        m = 14
        p_bar = np.mean([(np.sum(r**2) - m) / (m * (m - 1)) for r in sample])
        shares = sample.sum(axis=0) / (len(rows) * m)
        p_e = np.sum(shares**2)
        values.append((p_bar - p_e) / (1 - p_e))
    assert estimate.low == pytest.approx(np.quantile(values, 0.025), abs=1e-10)
    assert estimate.high == pytest.approx(np.quantile(values, 0.975), abs=1e-10)


def test_bootstrap_is_seeded_and_counts_undefined_resamples() -> None:
    a, b = [0, 0, 1, 1, 0, 1], [0, 0, 1, 0, 0, 1]
    first = cohen_estimate(a, b, 2, resamples=300, seed=1)
    assert cohen_estimate(a, b, 2, resamples=300, seed=1) == first
    other = cohen_estimate(a, b, 2, resamples=300, seed=2)
    assert (other.low, other.high, other.undefined_resamples) != (
        first.low,
        first.high,
        first.undefined_resamples,
    )
    # [0, 0, 1] twice: a resample of only the first two images (all 0) or only the third
    # (all 1) has one category for both readers: undefined
    rare = cohen_estimate([0, 0, 1], [0, 0, 1], 2, resamples=500, seed=4)
    draws = agreement._rng(4, "cohen", "none").integers(0, 3, size=(500, 3))
    one_category = (draws < 2).all(axis=1) | (draws == 2).all(axis=1)
    assert rare.undefined_resamples == int(one_category.sum()) > 0
    assert rare.low == rare.high == 1.0


def test_resamples_in_chunks_give_the_same_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resamples are drawn in chunks (bounded memory); the chunk size changes nothing."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 400)
    b = np.where(rng.random(400) < 0.7, a, rng.integers(0, 5, 400))
    whole = cohen_estimate(a, b, 5, "quadratic", resamples=200, seed=9)
    draws = agreement._rng(9, "cohen", "quadratic").integers(0, 400, size=(200, 400))
    values = [cohen_kappa(a[r], b[r], 5, "quadratic") for r in draws]
    assert whole.low == pytest.approx(np.quantile(values, 0.025), abs=1e-12)
    monkeypatch.setattr(agreement, "_CHUNK_CELLS", 400 * 7)  # 7 resamples per chunk
    chunked = cohen_estimate(a, b, 5, "quadratic", resamples=200, seed=9)
    assert chunked == whole


# --- decisions from the database ----------------------------------------------------------------

KL = {  # reader -> KL grade per image 1..8 ("u": uncertain, absent: not read)
    "dr.a": ["0", "0", "1", "1", "2", "2", "3", "4"],
    "dr.b": ["0", "1", "1", "2", "2", "2", "3", "3"],
    "dr.c": ["0", "0", "1", "1", "2", "u", "4", None],
}
FRACTURE = {
    "dr.a": [0, 0, 1, 1, 0, 0, 1, 0],
    "dr.b": [0, 1, 1, 1, 0, 0, 1, 0],
    "dr.c": [0, 0, 1, 0, 0, 0, 1, 1],
}


def _workspace(folder: Path, images: int = 8) -> None:
    ws = open_workspace(Settings(data_dir=folder, reader="dr.setup"))
    with ws.db.write() as session:
        for i in range(images):
            add_image(session, sop=f"1.2.3.{i}", study_uid=f"1.2.9.{i}", series_uid=f"1.2.9.{i}.1")
    ws.close()


def _import(folder: Path, rows: list[dict[str, Any]]) -> None:
    path = folder / "reads.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["image_id", "task", "value", "uncertain", "reader"]
        )
        writer.writeheader()
        writer.writerows(rows)
    assert main(["--data-dir", str(folder), "label", "import", str(path)]) == 0


def _reads() -> list[dict[str, Any]]:
    rows = []
    for reader, grades in KL.items():
        for i, grade in enumerate(grades):
            if grade is not None:
                uncertain = grade == "u"
                value = "" if uncertain else grade
                rows.append(
                    {
                        "image_id": i + 1,
                        "task": "kl_grade",
                        "value": value,
                        "uncertain": int(uncertain),
                        "reader": reader,
                    }
                )
    for reader, values in FRACTURE.items():
        rows += [
            {"image_id": i + 1, "task": "fracture", "value": v, "uncertain": 0, "reader": reader}
            for i, v in enumerate(values)
        ]
    return rows


def _agreement_json(
    folder: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    capsys.readouterr()
    assert (
        main(
            ["--data-dir", str(folder), "team", "agreement", "--json", "--resamples", "300", *extra]
        )
        == 0
    )
    return json.loads(capsys.readouterr().out)


def _task(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in report["tasks"] if t["task"] == name)


def _pair(task: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    return next(p for p in task["pairs"] if p["readers"] == [a, b])


def test_agreement_of_imported_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workspace(tmp_path)
    _import(tmp_path, _reads())
    report = _agreement_json(tmp_path, capsys)
    assert report["resamples"] == 300 and report["images"] == "all"

    kl = _task(report, "kl_grade")
    assert kl["weights"] == "quadratic" and kl["raters"] == ["dr.a", "dr.b", "dr.c"]
    counts = {r["reader"]: (r["decided"], r["uncertain"]) for r in kl["readers"]}
    assert counts == {"dr.a": (8, 0), "dr.b": (8, 0), "dr.c": (6, 1)}
    ab = _pair(kl, "dr.a", "dr.b")
    a, b = [int(g) for g in KL["dr.a"]], [int(g) for g in KL["dr.b"]]
    assert ab["kappa"]["n"] == 8
    assert ab["kappa"]["value"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
    quadratic = cohen_kappa_score(a, b, labels=range(5), weights="quadratic")
    assert ab["weighted_kappa"]["value"] == pytest.approx(quadratic, abs=1e-6)
    assert ab["kappa"]["percent_agreement"] == pytest.approx(100 * 5 / 8)
    assert ab["kappa"]["ci_low"] <= ab["kappa"]["value"] <= ab["kappa"]["ci_high"]
    # dr.c: image 6 uncertain, image 8 not read -> the pair rests on images 1-5 and 7
    ac = _pair(kl, "dr.a", "dr.c")
    keep = [0, 1, 2, 3, 4, 6]
    c_grades = [int(KL["dr.c"][i]) for i in keep]  # type: ignore[arg-type]
    assert ac["kappa"]["n"] == 6
    expected_ac = cohen_kappa_score(
        [a[i] for i in keep], c_grades, labels=range(5), weights="quadratic"
    )
    assert ac["weighted_kappa"]["value"] == pytest.approx(expected_ac, abs=1e-6)
    # Fleiss on the six images all three decided; the other two counted
    assert kl["fleiss_left_out_fewer_reads"] == 2 and kl["fleiss"]["n"] == 6
    grid = np.array([[a[i], b[i], c] for i, c in zip(keep, c_grades, strict=True)])
    assert kl["fleiss"]["value"] == pytest.approx(fleiss_kappa(fleiss_counts(grid, 5)), abs=1e-6)

    fracture = _task(report, "fracture")
    assert fracture["weights"] is None and fracture["fleiss"]["n"] == 8
    for x, y in (("dr.a", "dr.b"), ("dr.a", "dr.c"), ("dr.b", "dr.c")):
        pair = _pair(fracture, x, y)
        assert pair["weighted_kappa"] is None
        assert pair["kappa"]["value"] == pytest.approx(
            cohen_kappa_score(FRACTURE[x], FRACTURE[y]), abs=1e-6
        )
    # tasks nobody decided are listed with the reason, not computed
    abnormal = _task(report, "abnormal")
    assert abnormal["pairs"] == [] and abnormal["fleiss"] is None and abnormal["skipped"]


def test_only_some_tasks_and_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workspace(tmp_path)
    _import(tmp_path, _reads())
    full = _agreement_json(tmp_path, capsys)
    one = _agreement_json(tmp_path, capsys, "--task", "fracture")
    assert [t["task"] for t in one["tasks"]] == ["fracture"]
    # the intervals of a task do not depend on what else the report holds
    assert one["tasks"][0] == _task(full, "fracture")
    some = _agreement_json(tmp_path, capsys, "--task", "fracture", "--image-ids", "1,2,3", "4")
    assert some["images"] == 4
    pair = _pair(some["tasks"][0], "dr.a", "dr.b")
    expected = cohen_kappa_score(FRACTURE["dr.a"][:4], FRACTURE["dr.b"][:4])
    assert pair["kappa"]["n"] == 4 and pair["kappa"]["value"] == pytest.approx(expected, abs=1e-6)
    again = _agreement_json(tmp_path, capsys, "--task", "fracture", "--seed", "19")
    assert again == one  # 19 is the default seed
    other = _agreement_json(tmp_path, capsys, "--task", "fracture", "--seed", "20")
    assert other["tasks"][0]["pairs"] != one["tasks"][0]["pairs"]


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workspace(tmp_path, images=2)
    base = ["--data-dir", str(tmp_path), "team", "agreement"]
    assert main([*base, "--task", "no_such_task"]) == 1
    assert "unknown task 'no_such_task'; tasks: abnormal" in capsys.readouterr().err
    assert main([*base, "--image-ids", "2,99"]) == 1
    assert "no image with id 99" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--resamples", "0"])
    with pytest.raises(SystemExit):
        main([*base, "--image-ids", "x"])
    assert main(["--data-dir", str(tmp_path), "team"]) == 2


def test_cli_defaults_are_the_cores() -> None:
    args = build_parser().parse_args(["team", "agreement"])
    assert args.resamples == agreement.DEFAULT_RESAMPLES
    assert args.seed == agreement.DEFAULT_SEED
    assert args.weights == "quadratic" and args.task is None and args.image_ids is None


def test_text_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workspace(tmp_path)
    _import(tmp_path, _reads())
    capsys.readouterr()
    assert main(["--data-dir", str(tmp_path), "team", "agreement", "--resamples", "300"]) == 0
    out = capsys.readouterr().out
    report = _agreement_json(tmp_path, capsys)  # also 300 resamples
    ab = _pair(_task(report, "kl_grade"), "dr.a", "dr.b")
    kappa, weighted = ab["kappa"], ab["weighted_kappa"]
    block = next(b for b in out.split("\n\n") if b.startswith("kl_grade"))
    line = next(line for line in block.splitlines() if line.strip().startswith("dr.a / dr.b"))
    assert line.split()[3:5] == ["8", "62%"]
    assert f"{kappa['value']:.3f} [{kappa['ci_low']:>6.3f}, {kappa['ci_high']:>6.3f}]" in line
    assert (
        f"{weighted['value']:.3f} [{weighted['ci_low']:>6.3f}, {weighted['ci_high']:>6.3f}]" in line
    )
    assert "kl_grade (ordinal, per image, weighted kappa: quadratic): 3 readers, 8 images" in out
    assert "uncertain decisions left out: dr.c 1" in out
    assert "left out of Fleiss: 2" in out
    assert "no decisions yet: abnormal" in out


def test_current_decision_of_each_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decisions made in the review session: a reader's own later decision replaces theirs, an
    undo brings back the one before, another reader's later decision leaves it standing, and an
    uncertain mark takes the image out of the statistics."""
    _workspace(tmp_path, images=4)
    ws = open_workspace(Settings(data_dir=tmp_path))

    def read(reader: str, choices: list[int], then: Any = None) -> None:
        session = ReviewSession(ws.db, reader)
        try:
            for image_id, index in enumerate(choices, start=1):
                session.open(image_id)
                session.select_task("fracture")
                assert session.choose(index)
            if then is not None:
                then(session)
            assert session.wait(10)
        finally:
            session.close()

    def change_mind(session: ReviewSession) -> None:
        session.open(4)
        session.select_task("fracture")
        assert session.choose(0)  # replaces dr.a's 1 on image 4 ...
        assert session.choose(1)  # ... and again
        assert session.undo()  # back to 0

    def unsure(session: ReviewSession) -> None:
        session.open(1)
        session.select_task("fracture")
        assert session.mark_uncertain()

    read("dr.a", [0, 1, 1, 1], change_mind)  # dr.a's current: 0 1 1 0
    read("dr.b", [0, 1, 0, 0])  # decided after dr.a on the same images
    read("dr.c", [1, 1, 0, 0], unsure)  # image 1: uncertain
    ws.close()
    fracture = _task(_agreement_json(tmp_path, capsys, "--task", "fracture"), "fracture")
    ab = _pair(fracture, "dr.a", "dr.b")
    assert ab["kappa"]["n"] == 4
    assert ab["kappa"]["value"] == pytest.approx(
        cohen_kappa_score([0, 1, 1, 0], [0, 1, 0, 0]), abs=1e-6
    )
    bc = _pair(fracture, "dr.b", "dr.c")
    assert bc["kappa"]["n"] == 3 and bc["kappa"]["percent_agreement"] == pytest.approx(100.0)
    assert {r["reader"]: r["uncertain"] for r in fracture["readers"]} == {
        "dr.a": 0,
        "dr.b": 0,
        "dr.c": 1,
    }
    assert fracture["fleiss"]["n"] == 3 and fracture["fleiss_left_out_fewer_reads"] == 1


def test_study_scope_regression_and_region_tasks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study-scoped decision is stored on each image of its study: the unit is the study.
    Regression and region tasks are listed as skipped, with the reason."""
    ws = open_workspace(Settings(data_dir=tmp_path, reader="dr.setup"))
    with ws.db.write() as session:
        for i in range(6):  # three studies of two images
            add_image(
                session,
                sop=f"1.2.3.{i}",
                study_uid=f"1.2.9.{i // 2}",
                series_uid=f"1.2.9.{i // 2}.1",
            )
    ws.close()
    base = ["--data-dir", str(tmp_path), "task", "add"]
    assert main([*base, "hardware", "--kind", "binary", "--scope", "study"]) == 0
    assert main([*base, "angle", "--kind", "regression"]) == 0
    assert main([*base, "lesion_box", "--kind", "region"]) == 0
    rows = [
        {"image_id": image, "task": "hardware", "value": value, "uncertain": 0, "reader": reader}
        for reader, values in (("dr.a", [1, 0, 1]), ("dr.b", [1, 0, 0]))
        for image, value in zip((1, 3, 5), values, strict=True)
    ]
    rows += [
        {"image_id": 1, "task": "angle", "value": v, "uncertain": 0, "reader": r}
        for r, v in (("dr.a", "12.5"), ("dr.b", "14"))
    ]
    _import(tmp_path, rows)
    report = _agreement_json(
        tmp_path, capsys, "--task", "hardware", "--task", "angle", "--task", "lesion_box"
    )
    hardware = _task(report, "hardware")
    assert hardware["unit"] == "study" and hardware["units"] == 3
    pair = _pair(hardware, "dr.a", "dr.b")
    assert pair["kappa"]["n"] == 3
    assert pair["kappa"]["value"] == pytest.approx(
        cohen_kappa_score([1, 0, 1], [1, 0, 0]), abs=1e-6
    )
    assert _task(report, "angle")["skipped"].startswith("regression task")
    assert _task(report, "lesion_box")["skipped"].startswith("region task")
