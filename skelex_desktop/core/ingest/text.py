"""Small parsers for header values: clipped strings, DICOM dates, numbers."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

_DATE_FORMATS = (
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$"),
)


def clean(value: object) -> str:
    """`value` as a stripped single-line string (NULs dropped, whitespace runs made one space),
    whole: `limits.fit_columns` decides what may be cut, and reports it."""
    if value is None:
        return ""
    text = str(value).replace("\x00", "").strip()
    return " ".join(text.split())


def clip(value: object, length: int) -> str:
    """`value` as a stripped single-line string of at most `length` characters (for values
    that are parsed, not stored: dates, numbers, CSV headers)."""
    return clean(value)[:length]


def parse_date(value: object) -> date | None:
    """A DICOM DA (YYYYMMDD) or ISO date, else None."""
    text = clip(value, 32)
    for pattern in _DATE_FORMATS:
        match = pattern.match(text)
        if match:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return None
    return None


def positive_float(value: Any) -> float | None:
    """`value` as a finite positive float, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def optional_int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
