"""One exception class per way a trace can be unusable; each renders as one line.

The CLI prints ``str(error)`` and exits 2; the app shows it in a dialog.
"""

from __future__ import annotations


class TraceError(Exception):
    """Base class: the file cannot be analysed. ``str()`` is one user-facing line."""


class TraceNotFound(TraceError):
    """The path does not exist (and no DDP rank files stand beside it)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: no such file")


class NotHDF5(TraceError):
    """The file exists but is not HDF5 at all."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: not an HDF5 file, so not a Trainwreck trace")


class NotATrace(TraceError):
    """An HDF5 file written by something else."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path}: an HDF5 file but not a Trainwreck trace (no 'format' attribute "
            "'trainwreck-trace')"
        )


class TraceTooNew(TraceError):
    """Written by a newer Trainwreck than this reader understands."""

    def __init__(self, path: str, version: int, supported: int) -> None:
        super().__init__(
            f"{path}: written by a newer Trainwreck (format {version}, this reader supports "
            f"up to {supported}): upgrade Trainwreck"
        )


class TraceTooOld(TraceError):
    """Written in a format version this reader no longer reads."""

    def __init__(self, path: str, version: int, oldest: int) -> None:
        super().__init__(
            f"{path}: written in trace format {version}, older than the oldest this reader "
            f"supports ({oldest}): re-record the run or use an older Trainwreck"
        )


class TraceCorrupt(TraceError):
    """HDF5 structures are damaged or required datasets are missing or unreadable."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: corrupt trace ({detail})")


class TraceRefused(TraceCorrupt):
    """The file asks the reader to look elsewhere (an external link, a virtual dataset, raw data
    stored in another file): a trace is one self-contained file, and a shared trace must never
    make the tool read another file or block on a pipe."""

    def __init__(self, path: str, detail: str) -> None:
        TraceError.__init__(self, f"{path}: refused, {detail} (a trace never refers to another file)")


class TraceLimit(TraceCorrupt):
    """Reading would exceed a sane bound (declared sizes larger than the file, decompression bombs,
    oversized attributes); the message names the limit."""

    def __init__(self, path: str, detail: str) -> None:
        TraceError.__init__(self, f"{path}: refused, {detail}")
