"""Kill -9 trials: how many, which seed, and the figures they leave (docs/RELIABILITY.md).

SKELEX_RELIABILITY_TRIALS (default 4) trials per scenario, drawn from SKELEX_RELIABILITY_SEED
(default 16); SKELEX_RELIABILITY_REPORT=FILE.json writes the figures there. The figures are
also printed at the end of the pytest run.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TRIALS = int(os.environ.get("SKELEX_RELIABILITY_TRIALS", "4"))
SEED = os.environ.get("SKELEX_RELIABILITY_SEED", "16")
FIGURES: list[dict[str, Any]] = []


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A generator seeded by the seed and the test's name: each test draws the same delays
    whichever tests run before it."""
    return random.Random(f"{SEED}-{request.node.name}")


@pytest.fixture
def figures() -> Iterator[list[dict[str, Any]]]:
    """Append one dict per trial: scenario, delay, outcome, survived, lost, ..."""
    rows: list[dict[str, Any]] = []
    yield rows
    FIGURES.extend(rows)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for row in FIGURES:
        by_scenario.setdefault(row["scenario"], []).append(row)
    terminalreporter.section(f"kill -9 trials (seed {SEED})")
    for scenario, rows in by_scenario.items():
        outcomes: dict[str, int] = {}
        for row in rows:
            outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
        survived = sum(row["survived"] for row in rows)
        lost = sum(row["lost"] for row in rows)
        shown = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        terminalreporter.write_line(
            f"{scenario:<18} trials {len(rows):>3}  survived {survived:>3}  lost {lost:>3}  "
            f"({shown})"
        )
    report = os.environ.get("SKELEX_RELIABILITY_REPORT")
    if report:
        Path(report).write_text(json.dumps(FIGURES, indent=2), encoding="utf-8")
