"""Reader names: the one rule for every name a person types that is stored with a decision.

Reader names come from `--reader`, from `settings.json` and from label CSV rows; they end up in
label and audit rows (128 characters in the database) and in every list a reader sees. A name is
trimmed; it must not be empty, longer than `MAX_NAME_LENGTH` characters, or hold control or
format characters (NUL, tabs, line breaks, right-to-left overrides, zero-width characters),
which would hide or reorder what the name shows.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 128  # labels.reader and audit_events.who are String(128)
_SHOWN = 40  # characters of a refused name quoted in a message


class InvalidName(ValueError):
    """A name that cannot be stored; the message says what is wrong and how to fix it."""


def shown(text: str, limit: int = _SHOWN) -> str:
    """`text` quoted for a message: escaped (no control character reaches a terminal) and cut."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _refused_character(name: str) -> tuple[int, str] | None:
    """The first control, format, surrogate, private-use, unassigned or line/paragraph
    separator character and its position; ordinary spaces of any script are allowed."""
    if name.isprintable():  # fast path: no such character at all
        return None
    for index, char in enumerate(name):
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            return index, char
    return None


def describe_character(char: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`, or `U+0000` for a character without a name."""
    label = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {label}" if label else "")


def check_name(value: object, what: str = "reader name") -> str:
    """The trimmed name, or InvalidName saying why `value` cannot be a name."""
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise InvalidName(f"{what} must be text, got {kind}")
    name = value.strip()
    if not name:
        raise InvalidName(f"{what} is empty")
    refused = _refused_character(name)
    if refused is not None:
        index, char = refused
        raise InvalidName(
            f"{what} {shown(name)} contains the control character {describe_character(char)} "
            f"at position {index + 1}; use letters, digits, spaces and punctuation only"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"{what} {shown(name)} is {len(name)} characters long; "
            f"at most {MAX_NAME_LENGTH} are allowed"
        )
    return name
