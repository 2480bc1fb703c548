"""Progress: phases, cancellation and the text bar (tqdm underneath)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

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
    progress.set_total(4)
    progress.advance(current="a.dcm")
    progress.advance(3, current="x" * 50 + ".dcm")
    progress.set_status("phase two")
    progress.set_total(2)
    progress.advance(2, current="y.dcm")
    progress.finish()
    progress.finish()  # a second finish writes nothing more
    drawn = stream.getvalue()
    assert drawn.endswith("\n") and drawn.count("\n") == 1
    # a finished phase is always drawn complete, with the tail of the current item
    assert re.search(r"\[#{10}\] 4/4 \d\d:\d\d<\d\d:\d\d x{36}\.dcm\r", drawn)
    # the next phase starts from an empty bar and ends full
    second = drawn[drawn.rindex("4/4") :]
    assert "[----------] 0/2" in second
    assert re.search(r"\[#{10}\] 2/2 \d\d:\d\d<\d\d:\d\d y\.dcm\s*\n$", second)
    progress.set_total(1)  # after finish, a later phase draws a new bar on a new line
    progress.advance(current="z.dcm")
    progress.finish()
    assert re.fullmatch(r"\r.*\r\[#{10}\] 1/1 \S+ z\.dcm\s*\n", stream.getvalue()[len(drawn) :])
    quiet = io.StringIO()
    TextProgress(stream=quiet).advance()
    assert quiet.getvalue() == ""


def test_text_progress_redraws_at_most_ten_times_a_second() -> None:
    stream = _Tty()
    progress = TextProgress(stream=stream)
    progress.set_total(20_000)
    for _ in range(19_999):
        progress.advance()
    assert stream.getvalue().count("\r") < 40
    progress.advance()
    progress.finish()
    assert re.search(r"20000/20000 \S+ *\n$", stream.getvalue())


def test_importing_progress_does_not_import_tqdm() -> None:
    code = "import sys, skelex_desktop.core.progress; sys.exit('tqdm' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, timeout=60).returncode == 0


def test_curve_points_are_kept_per_series() -> None:
    progress = RecordingProgress()
    progress.report("fracture auroc", 1, 0.6)
    progress.report("fracture auroc", 2, 0.7)
    progress.report("implant auroc", 1, 0.9)
    assert progress.series == {
        "fracture auroc": [(1, 0.6), (2, 0.7)],
        "implant auroc": [(1, 0.9)],
    }
