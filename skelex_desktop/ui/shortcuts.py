"""The keyboard map, listed by F1 (kept in one place so the list and the keys agree)."""

from __future__ import annotations

SHORTCUTS: list[tuple[str, str]] = [
    (
        "Enter",
        "Open the selected worklist row / confirm the shown AI suggestions (not those of weak "
        "heads, CV AUROC < 0.70), then go to the next unreviewed image",
    ),
    ("0-9", "Choose that class for the current task (binary: 0 no, 1 yes; KL grade 0-4)"),
    ("U", "Mark the current task uncertain"),
    ("T / Shift+T", "Next / previous task"),
    ("N / P", "Next / previous image"),
    ("B", "Draw a box region for the current task"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo the last decision"),
    ("E", "Show or hide the error map"),
    ("Right-drag", "Window/level (right: wider, down: brighter level)"),
    ("W / Esc", "Next window preset (default, bone, soft tissue, auto) / reset"),
    ("Wheel, + / -", "Zoom"),
    ("F / =", "Fit to window / actual size (1:1)"),
    ("Left-drag", "Pan"),
    ("I, R, H, V", "Invert, rotate 90 degrees, flip horizontal, flip vertical"),
    ("Ctrl+O", "Import folders, files or a DICOMDIR"),
    ("Ctrl+E", "Export a labelled set"),
    ("F5", "Refresh the worklist"),
    ("F1", "This list"),
]


def shortcuts_html() -> str:
    rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
    return f"<table cellspacing='6'>{rows}</table>"
