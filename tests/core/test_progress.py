"""Progress: phases, cancellation and the text bar."""

from __future__ import annotations

import io

import pytest

from skelex_desktop.core.progress import (
    Cancelled,
    NullProgress,
    Progress,
    RecordingProgress,
    TextProgress,
    check,
)


def test_recording_progress_cancels_after_n_units() -> None:
    progress = RecordingProgress(cancel_after=2)
    assert isinstance(progress, Progress)
    progress.set_total(5)
    progress.set_status("phase one")
    progress.advance()
    check(progress)
    progress.advance(current="b.dcm")
    with pytest.raises(Cancelled):
        check(progress)
    assert (progress.done, progress.total, progress.current) == (2, 5, "b.dcm")
    assert progress.statuses == ["phase one"]


def test_set_total_starts_a_new_phase() -> None:
    progress = NullProgress()
    progress.set_total(3)
    progress.advance(3)
    progress.set_total(10)
    assert (progress.done, progress.total) == (0, 10)
    check(None)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_progress_draws_a_bar_on_a_terminal() -> None:
    stream = _Tty()
    progress = TextProgress(stream=stream, width=10)
    progress.set_total(2)
    progress.advance(2, current="x.dcm")
    progress.finish()
    assert "[##########] 2/2 x.dcm" in stream.getvalue()
    quiet = io.StringIO()
    TextProgress(stream=quiet).advance()
    assert quiet.getvalue() == ""


def test_curve_points_are_kept_per_series() -> None:
    progress = RecordingProgress()
    progress.report("fracture auroc", 1, 0.6)
    progress.report("fracture auroc", 2, 0.7)
    progress.report("implant auroc", 1, 0.9)
    assert progress.series == {
        "fracture auroc": [(1, 0.6), (2, 0.7)],
        "implant auroc": [(1, 0.9)],
    }
