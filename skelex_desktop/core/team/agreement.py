"""Inter-reader agreement: Cohen's kappa per reader pair (weighted for ordinal tasks), Fleiss'
kappa over all readers, percent agreement and seeded bootstrap 95 % intervals, from the
readers' current decisions.

Definitions (docs/AGREEMENT.md has them with the reasons):
- Cohen: with O the pair's table of proportions over q categories, E the product of its
  margins and W a disagreement weight (unweighted 1 off the diagonal; linear |i-j|/(q-1);
  quadratic (i-j)^2/(q-1)^2 over the schema's class order, so unused classes keep their place),
  kappa = 1 - sum(W*O) / sum(W*E). Unweighted, that is (p_o - p_e) / (1 - p_e).
- Fleiss: on images with a decision from all m readers, P_i = (sum_j n_ij^2 - m) / (m(m - 1)),
  P = mean P_i, p_j = share of all ratings in category j, P_e = sum p_j^2,
  kappa = (P - P_e) / (1 - P_e). Images with fewer reads are left out and counted.
- Undefined (chance agreement 1: every rating in one category; no image) is NaN with a reason.
- Interval: 2.5th and 97.5th percentiles of the statistic over `resamples` bootstrap samples of
  the images (with replacement), drawn from a generator seeded by (seed, task, readers), so the
  same data and seed give the same interval whatever else the report holds. Samples in which
  the statistic is undefined are left out and counted.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skelex_desktop.core.db.models import Image, Label, Series, Task
from skelex_desktop.core.domain import LabelSource, TaskKind
from skelex_desktop.core.progress import Progress, check

Weights = Literal["none", "linear", "quadratic"]
WEIGHTS: tuple[Weights, ...] = ("none", "linear", "quadratic")
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 19
CONFIDENCE = 0.95
# one bootstrap chunk holds at most this many drawn indices (memory stays ~ tens of MB)
_CHUNK_CELLS = 2_000_000
_TINY = 1e-12
_IDS_PER_QUERY = 500


class AgreementError(ValueError):
    """A request that cannot be answered (an unknown task or image, bad options)."""


# --- the statistics on arrays -----------------------------------------------------------------


def disagreement_weights(n_categories: int, weights: Weights = "none") -> np.ndarray:
    """The q x q disagreement weights: 0 on the diagonal; off it 1 (none), |i-j|/(q-1)
    (linear) or (i-j)^2/(q-1)^2 (quadratic)."""
    if weights not in WEIGHTS:
        raise AgreementError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    if n_categories < 1:
        raise AgreementError("kappa needs at least one category")
    i, j = np.indices((n_categories, n_categories))
    span = max(n_categories - 1, 1)
    if weights == "linear":
        return np.abs(i - j) / span
    if weights == "quadratic":
        return ((i - j) / span) ** 2
    return (i != j).astype(np.float64)


def _kappa_of_tables(tables: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each q x q count table in `tables` (..., q, q); NaN where the chance
    disagreement is zero."""
    tables = np.asarray(tables, np.float64)
    totals = tables.sum(axis=(-2, -1), keepdims=True)
    observed = tables / np.where(totals > 0, totals, 1.0)
    rows, cols = observed.sum(axis=-1), observed.sum(axis=-2)
    expected = rows[..., :, None] * cols[..., None, :]
    d_obs = (w * observed).sum(axis=(-2, -1))
    d_exp = (w * expected).sum(axis=(-2, -1))
    defined = (d_exp > _TINY) & (totals[..., 0, 0] > 0)
    safe = np.where(defined, d_exp, 1.0)
    return np.where(defined, 1.0 - d_obs / safe, np.nan)


def _codes(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray, q: int) -> np.ndarray:
    first, second = np.asarray(a, np.int64).ravel(), np.asarray(b, np.int64).ravel()
    if first.shape != second.shape:
        raise AgreementError(
            f"the two readers' ratings differ in length: {first.size} vs {second.size}"
        )
    for ratings in (first, second):
        if ratings.size and (ratings.min() < 0 or ratings.max() >= q):
            raise AgreementError(f"ratings must be category indices 0..{q - 1}")
    return first * q + second


def contingency(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray, q: int) -> np.ndarray:
    """The q x q table of counts: rows reader a's category, columns reader b's."""
    return np.bincount(_codes(a, b, q), minlength=q * q).reshape(q, q)


def cohen_kappa(
    a: Sequence[int] | np.ndarray,
    b: Sequence[int] | np.ndarray,
    n_categories: int,
    weights: Weights = "none",
) -> float:
    """Cohen's kappa of two readers' category indices (0..q-1) on the same images, unweighted
    or linear/quadratic weighted; NaN when undefined (no image, or chance agreement 1)."""
    table = contingency(a, b, n_categories)
    return float(_kappa_of_tables(table, disagreement_weights(n_categories, weights)))


def fleiss_counts(ratings: np.ndarray, n_categories: int) -> np.ndarray:
    """Images x categories counts of how many readers chose each category, from an images x
    readers matrix of category indices (every cell rated)."""
    ratings = np.asarray(ratings, np.int64)
    if ratings.ndim != 2:
        raise AgreementError("ratings must be an images x readers matrix")
    if ratings.size and (ratings.min() < 0 or ratings.max() >= n_categories):
        raise AgreementError(f"ratings must be category indices 0..{n_categories - 1}")
    counts = np.zeros((ratings.shape[0], n_categories), np.int64)
    for column in ratings.T:
        counts[np.arange(ratings.shape[0]), column] += 1
    return counts


def _fleiss_parts(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-image agreement P_i and the number of ratings per image m."""
    counts = np.asarray(counts, np.int64)
    if counts.ndim != 2:
        raise AgreementError("Fleiss' kappa needs an images x categories table of counts")
    per_image = counts.sum(axis=1)
    if counts.shape[0] == 0:
        return np.zeros(0), 0
    m = int(per_image[0])
    if np.any(per_image != m):
        raise AgreementError("Fleiss' kappa needs the same number of ratings for every image")
    if m < 2:
        raise AgreementError("Fleiss' kappa needs at least two ratings per image")
    p_i = ((counts.astype(np.float64) ** 2).sum(axis=1) - m) / (m * (m - 1))
    return p_i, m


def _fleiss_of(p_i_mean: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Fleiss' kappa from the mean P_i and the category totals (..., q); NaN where P_e = 1."""
    shares = totals / totals.sum(axis=-1, keepdims=True)
    p_e = (shares**2).sum(axis=-1)
    defined = (1.0 - p_e) > _TINY
    return np.where(defined, (p_i_mean - p_e) / np.where(defined, 1.0 - p_e, 1.0), np.nan)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an images x categories table of counts (each row summing to the same
    number of readers m >= 2); NaN when undefined (no image, or every rating one category)."""
    p_i, _m = _fleiss_parts(counts)
    if p_i.size == 0:
        return math.nan
    totals = np.asarray(counts, np.float64).sum(axis=0)
    return float(_fleiss_of(np.asarray(p_i.mean()), totals))


def fleiss_observed(counts: np.ndarray) -> float:
    """P, the mean share of agreeing reader pairs per image (Fleiss' observed agreement)."""
    p_i, _m = _fleiss_parts(counts)
    return float(p_i.mean()) if p_i.size else math.nan


# --- intervals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval: `value` NaN and `reason` set when undefined;
    `agreement` the observed proportion of agreement; `n` the images it rests on."""

    value: float
    low: float
    high: float
    n: int
    agreement: float
    reason: str = ""
    resamples: int = 0
    undefined_resamples: int = 0

    @property
    def defined(self) -> bool:
        return not math.isnan(self.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": _finite(self.value),
            "ci_low": _finite(self.low),
            "ci_high": _finite(self.high),
            "n": self.n,
            "percent_agreement": _finite(self.agreement * 100.0),
            "reason": self.reason,
            "resamples": self.resamples,
            "undefined_resamples": self.undefined_resamples,
        }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def _interval(values: np.ndarray) -> tuple[float, float, int]:
    """The percentile interval of the defined bootstrap values, and how many were undefined."""
    defined = values[~np.isnan(values)]
    undefined = int(values.size - defined.size)
    if defined.size == 0:
        return math.nan, math.nan, undefined
    tail = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    return float(low), float(high), undefined


def _rng(seed: int, *key: str) -> np.random.Generator:
    """A generator seeded by the user's seed and what is resampled, independent of order."""
    return np.random.default_rng([seed, zlib.crc32("\x1f".join(key).encode("utf-8"))])


def _chunks(resamples: int, cells_per_resample: int) -> Iterable[int]:
    size = max(1, _CHUNK_CELLS // max(cells_per_resample, 1))
    for start in range(0, resamples, size):
        yield min(size, resamples - start)


def cohen_estimate(
    a: Sequence[int] | np.ndarray,
    b: Sequence[int] | np.ndarray,
    n_categories: int,
    weights: Weights = "none",
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    key: Sequence[str] = (),
    classes: Sequence[str] = (),
) -> Estimate:
    """Cohen's kappa of two readers with a bootstrap percentile interval over images."""
    codes = _codes(a, b, n_categories)
    n = int(codes.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, math.nan, "no image decided by both")
    q = n_categories
    w = disagreement_weights(q, weights)
    table = np.bincount(codes, minlength=q * q).reshape(q, q)
    value = float(_kappa_of_tables(table, w))
    agreement = float(np.trace(table)) / n
    if math.isnan(value):
        only = _category_name(int(codes[0]) // q, classes)
        reason = f"both readers chose {only} for every image: chance agreement is 1"
        return Estimate(value, math.nan, math.nan, n, agreement, reason)
    rng = _rng(seed, "cohen", weights, *key)
    values = np.empty(resamples)
    done = 0
    for size in _chunks(resamples, n):
        drawn = codes[rng.integers(0, n, size=(size, n))]
        drawn += (np.arange(size, dtype=np.int64) * q * q)[:, None]
        tables = np.bincount(drawn.ravel(), minlength=size * q * q).reshape(size, q, q)
        values[done : done + size] = _kappa_of_tables(tables, w)
        done += size
    low, high, undefined = _interval(values)
    return Estimate(value, low, high, n, agreement, "", resamples, undefined)


def fleiss_estimate(
    counts: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    key: Sequence[str] = (),
    classes: Sequence[str] = (),
) -> Estimate:
    """Fleiss' kappa of an images x categories count table with a bootstrap interval."""
    counts = np.asarray(counts, np.int64)
    p_i, _m = _fleiss_parts(counts)
    n = int(p_i.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, math.nan, "no image read by every reader")
    totals = counts.sum(axis=0).astype(np.float64)
    value = float(_fleiss_of(np.asarray(p_i.mean()), totals))
    agreement = float(p_i.mean())
    if math.isnan(value):
        only = _category_name(int(np.argmax(totals)), classes)
        reason = f"every reader chose {only} for every image: chance agreement is 1"
        return Estimate(value, math.nan, math.nan, n, agreement, reason)
    rng = _rng(seed, "fleiss", *key)
    values = np.empty(resamples)
    done = 0
    for size in _chunks(resamples, n * counts.shape[1]):
        drawn = rng.integers(0, n, size=(size, n))
        values[done : done + size] = _fleiss_of(
            p_i[drawn].mean(axis=1), counts[drawn].sum(axis=1).astype(np.float64)
        )
        done += size
    low, high, undefined = _interval(values)
    return Estimate(value, low, high, n, agreement, "", resamples, undefined)


def _category_name(index: int, classes: Sequence[str]) -> str:
    return repr(classes[index]) if index < len(classes) else f"category {index}"


# --- the report from the database ---------------------------------------------------------------


@dataclass
class ReaderCounts:
    """One reader's current decisions of a task in the report's images: `decided` have a
    category; `uncertain` are left out of every statistic, and so are `unusable` values that
    are not a class of the task (e.g. the schema changed since)."""

    reader: str
    decided: int = 0
    uncertain: int = 0
    unusable: int = 0


@dataclass(frozen=True)
class PairAgreement:
    """Two readers on the images both decided: Cohen's kappa and, for an ordinal task, the
    weighted kappa."""

    reader_a: str
    reader_b: str
    kappa: Estimate
    weighted: Estimate | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "readers": [self.reader_a, self.reader_b],
            "kappa": self.kappa.to_json(),
            "weighted_kappa": None if self.weighted is None else self.weighted.to_json(),
        }


@dataclass
class TaskAgreement:
    """Agreement on one task: per reader pair, and Fleiss' kappa over all its readers on the
    units (images; studies for a study-scoped task) every one of them decided."""

    task: str
    kind: str
    classes: list[str]
    unit: str = "image"
    weights: Weights | None = None
    readers: list[ReaderCounts] = field(default_factory=list)
    raters: list[str] = field(default_factory=list)  # readers with at least one category
    units: int = 0  # units with at least one reader's category
    pairs: list[PairAgreement] = field(default_factory=list)
    fleiss: Estimate | None = None
    fewer_reads: int = 0  # units left out of Fleiss: decided, but not by every reader
    skipped: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "kind": self.kind,
            "unit": self.unit,
            "weights": self.weights,
            "readers": [r.__dict__ for r in self.readers],
            "raters": self.raters,
            "units": self.units,
            "pairs": [p.to_json() for p in self.pairs],
            "fleiss": None if self.fleiss is None else self.fleiss.to_json(),
            "fleiss_left_out_fewer_reads": self.fewer_reads,
            "skipped": self.skipped,
        }


@dataclass
class AgreementReport:
    """Per task agreement over a set of images (all, or a project's)."""

    tasks: list[TaskAgreement]
    images: int | None  # how many images were asked for; None: all images
    resamples: int
    seed: int
    confidence: float = CONFIDENCE

    def to_json(self) -> dict[str, Any]:
        return {
            "images": "all" if self.images is None else self.images,
            "resamples": self.resamples,
            "seed": self.seed,
            "confidence": self.confidence,
            "interval": "bootstrap percentile, images resampled with replacement",
            "tasks": [t.to_json() for t in self.tasks],
        }


@dataclass(frozen=True)
class _Decision:
    label_id: int
    unit: int
    reader: str
    value: Any
    uncertain: bool


def agreement_report(
    session: Session,
    *,
    tasks: Sequence[str] | None = None,
    image_ids: Iterable[int] | None = None,
    weights: Weights = "quadratic",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> AgreementReport:
    """Agreement of the readers' current human decisions, per task (`tasks`: names, default
    every task of the schema), over `image_ids` (default: every image). A reader's current
    decision for an image and task is their latest one not undone (also where another reader
    decided later); AI labels are not readers. Ordinal tasks get `weights` on top of the
    unweighted kappa; regression and region tasks are listed as skipped with the reason."""
    if weights not in ("linear", "quadratic"):
        raise AgreementError(f"ordinal weights must be linear or quadratic, not {weights!r}")
    if resamples < 1:
        raise AgreementError("resamples must be at least 1")
    chosen = _tasks(session, tasks)
    ids = None if image_ids is None else sorted({int(i) for i in image_ids})
    if ids is not None:
        _check_images(session, ids)
    if progress is not None:
        progress.set_total(len(chosen))
        progress.set_status("reading decisions")
    decisions = _decisions(session, [t.id for t in chosen], ids)
    study_wide = {t.id for t in chosen if t.scope == "study"}
    study_of = _studies(session, {d[1] for t in study_wide for d in decisions.get(t, [])})
    out: list[TaskAgreement] = []
    for task in chosen:
        check(progress)
        out.append(
            _task_agreement(task, decisions.get(task.id, []), study_of, weights, resamples, seed)
        )
        if progress is not None:
            progress.advance(1, task.name)
    return AgreementReport(out, None if ids is None else len(ids), resamples, seed)


def _tasks(session: Session, names: Sequence[str] | None) -> list[Task]:
    every = list(session.scalars(select(Task).order_by(Task.order, Task.id)))
    if not names:
        return every
    by_name = {t.name: t for t in every}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise AgreementError(f"unknown task {', '.join(map(repr, unknown))}; tasks: {known}")
    return [by_name[n] for n in dict.fromkeys(names)]


def _check_images(session: Session, ids: list[int]) -> None:
    found: set[int] = set()
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        found.update(session.scalars(select(Image.id).where(Image.id.in_(chunk))))
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise AgreementError(f"no image with id {shown}; `skelex-desktop worklist` lists them")


# (label id, image id, reader, value, uncertain) per task id
_Row = tuple[int, int, str, Any, bool]


def _decisions(
    session: Session, task_ids: list[int], image_ids: list[int] | None
) -> dict[int, list[_Row]]:
    """Each reader's current human decision per (image, task): their latest label not undone."""
    out: dict[int, list[_Row]] = defaultdict(list)
    if not task_ids:
        return out
    chunks: list[list[int] | None] = (
        [None]
        if image_ids is None
        else [image_ids[i : i + _IDS_PER_QUERY] for i in range(0, len(image_ids), _IDS_PER_QUERY)]
    )
    for chunk in chunks:
        latest = select(func.max(Label.id).label("id")).where(
            Label.retracted_at.is_(None),
            Label.source == LabelSource.HUMAN.value,
            Label.task_id.in_(task_ids),
        )
        if chunk is not None:
            latest = latest.where(Label.image_id.in_(chunk))
        current = latest.group_by(Label.reader, Label.image_id, Label.task_id).subquery()
        query = (
            select(
                Label.task_id,
                Label.id,
                Label.image_id,
                Label.reader,
                Label.value,
                Label.uncertain,
            )
            .join(current, Label.id == current.c.id)
            .order_by(Label.id)
        )
        for task_id, label_id, image_id, reader, value, uncertain in session.execute(query):
            out[task_id].append((label_id, image_id, reader, value, bool(uncertain)))
    return out


def _studies(session: Session, image_ids: set[int]) -> dict[int, int]:
    ids = sorted(image_ids)
    out: dict[int, int] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        query = (
            select(Image.id, Series.study_id)
            .join(Series, Image.series_id == Series.id)
            .where(Image.id.in_(chunk))
        )
        out.update({image_id: study_id for image_id, study_id in session.execute(query)})
    return out


def _category(kind: TaskKind, classes: list[str], value: Any) -> int | None:
    if value is None or isinstance(value, float | dict | list):
        return None
    if kind == TaskKind.BINARY:
        return int(value) if value in (0, 1) and not isinstance(value, str) else None
    text = str(value)
    return classes.index(text) if text in classes else None


def _task_agreement(
    task: Task,
    rows: list[_Row],
    study_of: dict[int, int],
    weights: Weights,
    resamples: int,
    seed: int,
) -> TaskAgreement:
    kind = TaskKind(task.kind)
    classes = [str(c) for c in task.classes]
    unit = "study" if task.scope == "study" else "image"
    result = TaskAgreement(task.name, kind.value, classes, unit)
    if kind == TaskKind.REGRESSION:
        result.skipped = "regression task: kappa needs categories (no ICC computed)"
        return result
    if kind == TaskKind.REGION:
        result.skipped = "region task: boxes, not categories (no box agreement computed)"
        return result
    if kind == TaskKind.ORDINAL:
        result.weights = weights
    # a study-scoped decision is stored on every image of the study: one unit per study, the
    # reader's latest decision on any of its images
    latest: dict[tuple[int, str], _Decision] = {}
    for label_id, image_id, reader, value, uncertain in rows:
        key = study_of.get(image_id, -image_id) if unit == "study" else image_id
        seen = latest.get((key, reader))
        if seen is None or label_id > seen.label_id:
            latest[(key, reader)] = _Decision(label_id, key, reader, value, uncertain)
    counts = {reader: ReaderCounts(reader) for _key, reader in latest}
    categories: dict[tuple[int, str], int] = {}
    for decision in latest.values():
        tally = counts[decision.reader]
        if decision.uncertain:
            tally.uncertain += 1
            continue
        index = _category(kind, classes, decision.value)
        if index is None:
            tally.unusable += 1
            continue
        tally.decided += 1
        categories[(decision.unit, decision.reader)] = index
    result.readers = [counts[r] for r in sorted(counts)]
    readers = sorted({reader for _unit, reader in categories})
    units = sorted({u for u, _reader in categories})
    result.raters = readers
    result.units = len(units)
    if len(readers) < 2:
        result.skipped = (
            "fewer than two readers decided this task"
            if units
            else "no decision with a category (uncertain ones are left out)"
        )
        return result
    grid = np.full((len(units), len(readers)), -1, np.int64)
    row_of = {u: i for i, u in enumerate(units)}
    col_of = {r: j for j, r in enumerate(readers)}
    for (u, reader), index in categories.items():
        grid[row_of[u], col_of[reader]] = index
    q = len(classes)
    for (ja, a), (jb, b) in combinations(enumerate(readers), 2):
        both = (grid[:, ja] >= 0) & (grid[:, jb] >= 0)
        pair = (grid[both, ja], grid[both, jb])
        kappa = cohen_estimate(
            *pair, q, "none", resamples=resamples, seed=seed, key=(task.name, a, b), classes=classes
        )
        weighted = None
        if kind == TaskKind.ORDINAL:
            weighted = cohen_estimate(
                *pair,
                q,
                weights,
                resamples=resamples,
                seed=seed,
                key=(task.name, a, b),
                classes=classes,
            )
        result.pairs.append(PairAgreement(a, b, kappa, weighted))
    complete = (grid >= 0).all(axis=1)
    result.fewer_reads = int((~complete).sum())
    result.fleiss = fleiss_estimate(
        fleiss_counts(grid[complete], q),
        resamples=resamples,
        seed=seed,
        key=(task.name, *readers),
        classes=classes,
    )
    return result
