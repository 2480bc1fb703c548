"""Size limits of the importer and the error type that carries a per-file reason."""

from __future__ import annotations

from skelex_desktop.core.domain import ImportOutcome

MAX_FRAME_PIXELS = 100_000_000
"""Largest accepted frame (rows x columns); bigger images are refused before decoding."""

MAX_FILE_PIXELS = 1_000_000_000
"""Largest accepted file (frames x rows x columns), so a corrupt frame count cannot explode."""

THUMBNAIL_PX = 256
"""Longest side of a thumbnail."""


class IngestError(Exception):
    """One file cannot be imported; `outcome` is failed or skipped and the message says why."""

    def __init__(self, reason: str, outcome: ImportOutcome = ImportOutcome.FAILED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome


def reraise_interrupts(exc: BaseException) -> None:
    """Re-raise what must stop the program; everything else a decoder raises is a file's
    failure. Native decoders can raise outside `Exception` (a Rust panic surfaces as pyo3's
    PanicException, a BaseException), and one broken file must never stop an import."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise exc


def failure(exc: BaseException) -> tuple[ImportOutcome, str]:
    """What a file gets for an exception raised while reading it: an IngestError's own outcome
    and reason, else failed with a one-line reason. Interrupts are re-raised."""
    if isinstance(exc, IngestError):
        return exc.outcome, exc.reason
    if isinstance(exc, MemoryError):
        return ImportOutcome.FAILED, "out of memory while decoding"
    reraise_interrupts(exc)
    message = " ".join(str(exc).split())[:300]
    return ImportOutcome.FAILED, f"unexpected error: {type(exc).__name__}: {message}"


def skipped(reason: str) -> IngestError:
    """An IngestError for a file that is readable but not an image (SR, KOS, text, ...)."""
    return IngestError(reason, ImportOutcome.SKIPPED)


def check_frame_size(rows: int, cols: int, frames: int = 1) -> None:
    """Refuse empty or absurdly large images before any pixel is decoded."""
    if rows <= 0 or cols <= 0:
        raise IngestError(f"image has zero size: {rows} rows x {cols} columns")
    if frames <= 0:
        raise IngestError(f"invalid number of frames: {frames}")
    if rows * cols > MAX_FRAME_PIXELS:
        raise IngestError(
            f"image too large: {rows} x {cols} = {rows * cols:,} pixels exceeds the limit of "
            f"{MAX_FRAME_PIXELS:,}"
        )
    if rows * cols * frames > MAX_FILE_PIXELS:
        raise IngestError(
            f"file too large: {frames} frames of {rows} x {cols} exceed the limit of "
            f"{MAX_FILE_PIXELS:,} pixels per file"
        )
