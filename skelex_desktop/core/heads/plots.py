"""Evaluation plots of a trained head, drawn with OpenCV (no matplotlib): ROC curves and
reliability diagrams from out-of-fold logits, plus a small line-chart helper for benchmarks.

Every figure is a BGR uint8 image (640 x 480 by default) with axes, ticks, axis labels, a title
and a legend, written as PNG. `head_plots` makes the two files a training stores next to its
weights: `roc_<task>.png` and `calibration_<task>.png`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from skelex_desktop.core.heads.metrics import auroc, expected_calibration_error, softmax

WIDTH, HEIGHT = 640, 480
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (40, 40, 40)
GRID = (225, 225, 225)
CHANCE = (150, 150, 150)
BAR = (235, 225, 215)
# BGR, a colour-blind-friendly qualitative palette (Okabe-Ito)
PALETTE = [
    (178, 114, 0),
    (0, 94, 213),
    (115, 158, 0),
    (167, 121, 204),
    (233, 180, 86),
    (66, 228, 240),
    (0, 159, 230),
    (0, 0, 0),
]


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct score threshold, from (0, 0) to (1, 1)."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, np.float64)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # end of each run of tied scores
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]


def reliability(
    y_true: np.ndarray, probs: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: mean top-class confidence, accuracy, count (the bins of
    `expected_calibration_error`); empty bins have NaN confidence and accuracy."""
    p = np.asarray(probs, np.float64)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(y_true)).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, bins) / counts
        acc = np.bincount(which, correct, bins) / counts
    return conf, acc, counts


@dataclass
class Series:
    """One legend entry: a polyline (optionally with markers) in data coordinates."""

    label: str
    x: np.ndarray
    y: np.ndarray
    colour: tuple[int, int, int]
    thickness: int = 2
    markers: bool = False
    dashed: bool = False
    band: tuple[np.ndarray, np.ndarray] | None = None  # (low, high) shaded around y


@dataclass
class Chart:
    """A line chart with linear axes; `render()` returns the BGR image."""

    title: str
    xlabel: str
    ylabel: str
    xlim: tuple[float, float] = (0.0, 1.0)
    ylim: tuple[float, float] = (0.0, 1.0)
    series: list[Series] = field(default_factory=list)
    bars: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (left, right, height 0-1)
    bars_label: str = ""
    legend_corner: str = "lower right"
    width: int = WIDTH
    height: int = HEIGHT
    xticks: Sequence[float] | None = None
    yticks: Sequence[float] | None = None
    margins: tuple[int, int, int, int] = (72, 24, 44, 58)  # left, right, top, bottom

    def add(self, series: Series) -> None:
        self.series.append(series)

    def _box(self) -> tuple[int, int, int, int]:
        left, right, top, bottom = self.margins
        return left, top, self.width - right, self.height - bottom

    def to_px(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """[N, 2] int32 pixel coordinates of data points."""
        x0, y0, x1, y1 = self._box()
        (ax, bx), (ay, by) = self.xlim, self.ylim
        px = x0 + (np.asarray(x, float) - ax) / (bx - ax) * (x1 - x0)
        py = y1 - (np.asarray(y, float) - ay) / (by - ay) * (y1 - y0)
        return np.stack([px, py], axis=1).round().astype(np.int32)

    def render(self) -> np.ndarray:
        img = np.full((self.height, self.width, 3), 255, np.uint8)
        x0, y0, x1, y1 = self._box()
        xticks = self.xticks if self.xticks is not None else nice_ticks(*self.xlim)
        yticks = self.yticks if self.yticks is not None else nice_ticks(*self.ylim)
        for t in xticks:
            ((px, _),) = self.to_px([t], [self.ylim[0]])
            cv2.line(img, (int(px), y0), (int(px), y1), GRID, 1)
            cv2.line(img, (int(px), y1), (int(px), y1 + 5), INK, 1)
            _text(img, _fmt(t), (int(px), y1 + 20), 0.42, anchor="center")
        for t in yticks:
            ((_, py),) = self.to_px([self.xlim[0]], [t])
            cv2.line(img, (x0, int(py)), (x1, int(py)), GRID, 1)
            cv2.line(img, (x0 - 5, int(py)), (x0, int(py)), INK, 1)
            _text(img, _fmt(t), (x0 - 9, int(py) + 5), 0.42, anchor="right")
        if self.bars is not None:
            left, right, h = self.bars
            for a, b, v in zip(left, right, h, strict=True):
                if v <= 0:
                    continue
                ((pa, _),) = self.to_px([a], [0])
                ((pb, _),) = self.to_px([b], [0])
                top = int(y1 - v * 0.25 * (y1 - y0))
                cv2.rectangle(img, (int(pa) + 2, top), (int(pb) - 2, y1), BAR, -1)
        for s in self.series:
            self._draw_series(img, s)
        cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
        _text(img, self.title, (self.width // 2, 28), 0.58, anchor="center", thickness=2)
        _text(img, self.xlabel, ((x0 + x1) // 2, self.height - 14), 0.5, anchor="center")
        _vertical_text(img, self.ylabel, 16, (y0 + y1) // 2)
        self._legend(img)
        return img

    def _draw_series(self, img: np.ndarray, s: Series) -> None:
        keep = np.isfinite(np.asarray(s.x, float)) & np.isfinite(np.asarray(s.y, float))
        if s.band is not None:
            low, high = (np.asarray(v, float) for v in s.band)
            ok = keep & np.isfinite(low) & np.isfinite(high)
            if ok.sum() >= 2:
                top = self.to_px(np.asarray(s.x)[ok], high[ok])
                bottom = self.to_px(np.asarray(s.x)[ok], low[ok])[::-1]
                overlay = img.copy()
                cv2.fillPoly(overlay, [np.vstack([top, bottom])], s.colour, cv2.LINE_AA)
                cv2.addWeighted(overlay, 0.18, img, 0.82, 0, dst=img)
        pts = self.to_px(np.asarray(s.x)[keep], np.asarray(s.y)[keep])
        if len(pts) >= 2:
            if s.dashed:
                _dashed(img, pts, s.colour, s.thickness)
            else:
                cv2.polylines(img, [pts], False, s.colour, s.thickness, cv2.LINE_AA)
        if s.markers or len(pts) == 1:
            for p in pts:
                cv2.circle(img, (int(p[0]), int(p[1])), 4, s.colour, -1, cv2.LINE_AA)

    def _legend(self, img: np.ndarray) -> None:
        entries = [s for s in self.series if s.label]
        with_bars = bool(self.bars is not None and self.bars_label)
        if not entries and not with_bars:
            return
        scale, line_h = 0.42, 18
        labels = [s.label for s in entries] + ([self.bars_label] if with_bars else [])
        text_w = max(cv2.getTextSize(t, FONT, scale, 1)[0][0] for t in labels)
        w, h = text_w + 44, line_h * len(labels) + 10
        x0, y0, x1, y1 = self._box()
        lx = x1 - w - 8 if "right" in self.legend_corner else x0 + 8
        ly = y1 - h - 8 if "lower" in self.legend_corner else y0 + 8
        cv2.rectangle(img, (lx, ly), (lx + w, ly + h), (255, 255, 255), -1)
        cv2.rectangle(img, (lx, ly), (lx + w, ly + h), CHANCE, 1)
        for k, s in enumerate(entries):
            cy = ly + 14 + k * line_h
            sample = np.array([[lx + 8, cy - 4], [lx + 32, cy - 4]], np.int32)
            if s.dashed:
                _dashed(img, sample, s.colour, s.thickness)
            else:
                cv2.line(
                    img, tuple(sample[0]), tuple(sample[1]), s.colour, s.thickness, cv2.LINE_AA
                )
            if s.markers:
                cv2.circle(img, (lx + 20, cy - 4), 4, s.colour, -1, cv2.LINE_AA)
            _text(img, s.label, (lx + 38, cy), scale)
        if with_bars:
            cy = ly + 14 + len(entries) * line_h
            cv2.rectangle(img, (lx + 12, cy - 10), (lx + 28, cy + 2), BAR, -1)
            _text(img, self.bars_label, (lx + 38, cy), scale)


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 x 10^k) covering [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / target
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.ceil(lo / step - 1e-9) * step
    return [float(round(v, 10)) + 0.0 for v in np.arange(first, hi + step * 1e-6, step)]


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"


def _text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float,
    anchor: str = "left",
    thickness: int = 1,
) -> None:
    (w, _h), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x = org[0] - (w // 2 if anchor == "center" else w if anchor == "right" else 0)
    cv2.putText(img, text, (x, org[1]), FONT, scale, INK, thickness, cv2.LINE_AA)


def _vertical_text(img: np.ndarray, text: str, x: int, cy: int, scale: float = 0.5) -> None:
    """Text rotated 90 degrees counter-clockwise, centred on row `cy` at column `x`."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    patch = np.full((h + base + 4, w + 4, 3), 255, np.uint8)
    cv2.putText(patch, text, (2, h + 2), FONT, scale, INK, 1, cv2.LINE_AA)
    patch = cv2.rotate(patch, cv2.ROTATE_90_COUNTERCLOCKWISE)
    ph, pw = patch.shape[:2]
    top = max(0, cy - ph // 2)
    left = max(0, x - pw // 2)
    region = img[top : top + ph, left : left + pw]
    np.minimum(region, patch[: region.shape[0], : region.shape[1]], out=region)


def _dashed(
    img: np.ndarray,
    pts: np.ndarray,
    colour: tuple[int, int, int],
    thickness: int,
    dash: float = 7.0,
) -> None:
    """A dashed polyline through pixel points."""
    pts = pts.astype(float)
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        length = float(np.hypot(*(b - a)))
        steps = max(1, int(length // dash))
        for k in range(0, steps, 2):
            p = a + (b - a) * k / steps
            q = a + (b - a) * min(k + 1, steps) / steps
            cv2.line(
                img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, thickness, cv2.LINE_AA
            )


def roc_chart(
    y_true: np.ndarray,
    logits: np.ndarray,
    classes: Sequence[str],
    task: str,
    temperature: float = 1.0,
) -> Chart:
    """ROC of out-of-fold predictions: the positive class for two classes, else one curve per
    class (one-vs-rest) present with both outcomes."""
    y = np.asarray(y_true)
    probs = softmax(logits, temperature)
    chart = Chart(
        f"ROC - {task} (out-of-fold, n={len(y)})",
        "false positive rate",
        "true positive rate",
        legend_corner="lower right",
    )
    chart.add(Series("chance", np.array([0.0, 1.0]), np.array([0.0, 1.0]), CHANCE, 1, dashed=True))
    which = [1] if len(classes) == 2 else list(range(len(classes)))
    for k, c in enumerate(which):
        positive = y == c
        area = auroc(positive, probs[:, c])
        if area is None:
            continue
        fpr, tpr = roc_curve(positive, probs[:, c])
        name = str(classes[c]) if len(classes) == 2 else f"{classes[c]} vs rest"
        chart.add(
            Series(
                f"{name}  AUC {area:.3f}  ({int(positive.sum())} pos)",
                fpr,
                tpr,
                PALETTE[k % len(PALETTE)],
            )
        )
    return chart


def calibration_chart(
    y_true: np.ndarray, logits: np.ndarray, task: str, temperature: float, bins: int = 10
) -> Chart:
    """Reliability diagram of the top-class confidence before and after temperature scaling;
    the grey bars show how many images fall in each bin (after scaling, tallest = 1/4 height)."""
    y = np.asarray(y_true)
    chart = Chart(
        f"Reliability - {task} (out-of-fold, n={len(y)})",
        "confidence (top-class probability)",
        "accuracy",
        legend_corner="upper left",
    )
    chart.add(
        Series(
            "perfect calibration",
            np.array([0.0, 1.0]),
            np.array([0.0, 1.0]),
            CHANCE,
            1,
            dashed=True,
        )
    )
    edges = np.linspace(0.0, 1.0, bins + 1)
    for k, (name, t) in enumerate((("before", 1.0), (f"after, T={temperature:.2f}", temperature))):
        probs = softmax(logits, t)
        conf, acc, counts = reliability(y, probs, bins)
        ece = expected_calibration_error(y, probs, bins)
        chart.add(Series(f"{name}  ECE {ece:.3f}", conf, acc, PALETTE[k], markers=True))
        if k == 1 and counts.max() > 0:
            chart.bars = (edges[:-1], edges[1:], counts / counts.max())
            chart.bars_label = f"images per bin (max {int(counts.max())})"
    return chart


def save_png(path: Path, image: np.ndarray) -> Path:
    """Write `image` as PNG at `path` (through a temporary name)."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path.name} as PNG")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)
    return path


def head_plots(
    folder: Path,
    task: str,
    classes: Sequence[str],
    y_true: np.ndarray,
    logits: np.ndarray,
    temperature: float,
) -> list[Path]:
    """`roc_<task>.png` and `calibration_<task>.png` in `folder` from out-of-fold logits of the
    labelled images; returns their paths."""
    folder = Path(folder)
    return [
        save_png(folder / f"roc_{task}.png", roc_chart(y_true, logits, classes, task).render()),
        save_png(
            folder / f"calibration_{task}.png",
            calibration_chart(y_true, logits, task, temperature).render(),
        ),
    ]
