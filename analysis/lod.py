"""Level of detail: long runs analysed on a bounded number of rows.

A run of at most ``ROW_BUDGET`` rows is analysed on every row, and so is one of up to four
times that whose model is small (``CELLS`` per-layer statistics per row). A longer one (one
file, not a DDP run) is analysed on ``coarse(trace)``: the same ``Trace`` API over a selection
of its rows, windows of ``WINDOW`` consecutive rows at a regular stride from the first row to
the last, plus every row of the lead-up to the loss's events (its first non-finite value,
where it leaves its best level): the loss is the one series read in full. Steps stay the
run's own; only rows between the windows are not seen. Each finding's onset is then refined at
full resolution (``refine``): the detector runs again with every row between the window where
its evidence shows and the window before added, and its onset there is taken.

The selection is a store (``RowsStore``) in front of the file's: every row dataset reads as
its selected rows, read window by window (a window is a contiguous block: a few chunks), so
the detectors need no change and never read more than the budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.findings import Finding
from analysis.onset import rise_above_best
from analysis.trace import Trace

ROW_BUDGET = 32768  # rows a detector may see
WINDOW = 512  # consecutive rows per window of a long run's selection
REFINE_MAX = 8  # findings whose onset is refined at full resolution
CELLS = 200  # per-layer statistics per row (parameters + modules) a run up to 4x the budget may have
LEAD = 4  # windows of every row before a loss event (its lead-up, read in full)


class RowsStore:
    """A store that shows the rows ``rows`` (sorted row indices) of the row datasets of ``src``."""

    def __init__(self, src: Any, rows: np.ndarray, row_paths: set[str],
                 regular: Blocks | None = None) -> None:
        self._src = src
        self.rows = np.asarray(rows, dtype=np.int64)
        # Regular windows among the rows (a 1-D dataset reads them in one call), and where they are.
        self._regular = regular if regular is not None and hasattr(src, "read_blocks") else None
        if self._regular is not None:
            start, stride, count, block = self._regular
            reg = (start + stride * np.arange(count)[:, None] + np.arange(block)[None, :]).ravel()
            self._reg_pos = np.searchsorted(self.rows, reg)
            self._other_pos = np.setdiff1d(np.arange(len(self.rows)), self._reg_pos)
        self._row_paths = {p.strip("/") for p in row_paths}
        self.live = src.live
        self.file_bytes = getattr(src, "file_bytes", 0)
        # Where each window (run of consecutive rows) starts, as an index into ``rows``.
        self._window_starts = np.r_[0, np.flatnonzero(np.diff(self.rows) != 1) + 1]

    def _is_rows(self, path: str) -> bool:
        return path.strip("/") in self._row_paths

    def seconds_since_write(self) -> float:
        return self._src.seconds_since_write()

    def exists(self, path: str) -> bool:
        return self._src.exists(path)

    def attrs(self, path: str = "") -> dict[str, Any]:
        return self._src.attrs(path)

    def keys(self, path: str) -> list[str]:
        return self._src.keys(path)

    def dtype(self, path: str) -> np.dtype:
        return self._src.dtype(path)

    def shape(self, path: str) -> tuple[int, ...]:
        shape = self._src.shape(path)
        if not self._is_rows(path) or not shape:
            return shape
        return (int(np.searchsorted(self.rows, shape[0])), *shape[1:])

    def read(self, path: str, sel: Any = ()) -> np.ndarray:
        if not self._is_rows(path):
            return self._src.read(path, sel)
        sel = sel if isinstance(sel, tuple) else (sel,)
        first, rest = (sel[0] if sel else slice(None)), sel[1:]
        count = self.shape(path)[0]
        picked = np.arange(count)[first]
        if np.ndim(picked) == 0:
            return self._src.read(path, (int(self.rows[picked]), *rest))
        if (self._regular is not None and not rest and count == len(self.rows) and len(picked) == count
                and isinstance(first, slice) and first.step in (None, 1) and self._src.shape(path)[1:] == ()):
            return self._read_all_1d(path)
        return self._read_picked(path, picked, rest)

    def _read_all_1d(self, path: str) -> np.ndarray:
        """Every selected row of a 1-D dataset: the regular windows in one read, the others apart."""
        part = self._src.read_blocks(path, *self._regular)
        out = np.empty(len(self.rows), dtype=part.dtype)
        out[self._reg_pos] = part
        if len(self._other_pos):
            out[self._other_pos] = self._read_picked(path, self._other_pos, ())
        return out

    def read_rows(self, path: str, rows: np.ndarray, rest: tuple = ()) -> np.ndarray:
        if not self._is_rows(path):
            return self._src.read_rows(path, rows, rest)
        return self._read_picked(path, np.asarray(rows, dtype=np.int64), rest)

    def _read_picked(self, path: str, picked: np.ndarray, rest: tuple) -> np.ndarray:
        """Selected rows ``picked`` (indices into ``self.rows``), one read per window they touch,
        each into its place in the result (no concatenated copies of big columns)."""
        order = np.argsort(picked, kind="stable")
        ordered = picked[order]
        window = np.searchsorted(self._window_starts, ordered, side="right")
        cuts = np.r_[0, np.flatnonzero(np.diff(window)) + 1, len(ordered)]
        real = self.rows[ordered]
        empty = self._src.read(path, (slice(0, 0), *rest))
        out = np.empty((len(ordered), *empty.shape[1:]), dtype=empty.dtype)
        read_into = getattr(self._src, "read_into", None)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            lo, hi = int(real[a]), int(real[b - 1]) + 1
            if hi - lo == b - a and read_into is not None:
                read_into(path, (slice(lo, hi), *rest), out[a:b])
            elif b > a:
                out[a:b] = self._src.read_rows(path, real[a:b], rest)
        if len(order) > 1 and np.any(np.diff(order) < 0):
            out = out[np.argsort(order, kind="stable")]
        return out

    def refresh(self) -> None:
        """A selection is of rows already read: nothing to refresh."""

    def close(self) -> None:
        """The file belongs to the full trace."""


def needs_coarse(trace: Trace, budget: int | None = None) -> bool:
    """A run (one file) of more than ``budget`` rows, unless its per-layer statistics are few
    enough to read in full (a small model: at most 4 × budget rows of ``CELLS`` per row)."""
    budget = budget or ROW_BUDGET
    n = trace.n_steps
    if trace.n_ranks != 1 or n <= budget:
        return False
    width = len(trace.param_names) + len(trace.module_names)
    return n > 4 * budget or n * width > budget * CELLS


Blocks = tuple[int, int, int, int]  # (start, stride, count, block): ``count`` runs of ``block`` rows


def select_rows(trace: Trace, budget: int | None = None,
                window: int | None = None) -> tuple[np.ndarray, Blocks]:
    """Windows of ``window`` rows at a regular stride from the first row (``budget`` rows in all),
    one ending at the last row, and every row from ``LEAD`` windows before to one window after the
    first non-finite loss and where the loss leaves its best level (1.3×) for good: ``(rows,
    regular windows)``."""
    budget, window = budget or ROW_BUDGET, window or WINDOW
    n = trace.n_steps
    count = max(budget // window - 1, 2)
    stride = max((n - window) // (count - 1), window)
    count = min(count, (n - window) // stride + 1)
    starts = np.arange(count, dtype=np.int64) * stride
    extra = [n - window]
    loss = trace.loss()  # read in full: the events of the loss get every row around them
    bad = np.flatnonzero(~np.isfinite(loss))
    for event in (int(bad[0]) if len(bad) else -1, _loss_rise(loss, budget)):
        if event >= 0:
            extra += [min(max(event + k * window, 0), n - window) for k in range(-LEAD, 1)]
    rows = (np.r_[starts, extra][:, None] + np.arange(window)[None, :]).ravel()
    return np.unique(rows[(rows >= 0) & (rows < n)]), (0, int(stride), int(count), int(window))


def _loss_rise(loss: np.ndarray, budget: int) -> int:
    """Where the loss leaves its best level for good (``rise_above_best``, 1.3×), found on means of
    blocks of rows (at most ``budget / 2`` of them: a long loss costs little), as a row; -1 if never."""
    size = max(1, -(-len(loss) // max(budget // 2, 1)))
    whole = len(loss) // size * size
    means = np.asarray(loss[:whole], dtype=np.float64).reshape(-1, size).mean(axis=1)  # NaN stays NaN
    found = rise_above_best(means, 1.3)
    return found * size if found >= 0 else -1


def view(trace: Trace, rows: np.ndarray, regular: Blocks | None = None) -> Trace:
    """``trace`` seen at ``rows`` only (same file, same steps, same API)."""
    store = RowsStore(trace._src, rows, set(trace._row_datasets()), regular)  # noqa: SLF001 - the reader's
    return Trace([store], [trace.path])


def coarse(trace: Trace, budget: int | None = None) -> Trace:
    """The bounded-resolution view of a long run (``trace`` itself when it is short)."""
    return view(trace, *select_rows(trace, budget)) if needs_coarse(trace, budget) else trace


def refine(trace: Trace, view_trace: Trace, findings: list[Finding], run: Any,
           budget: int | None = None) -> None:
    """Onsets of ``findings`` (found on ``view_trace``) at full resolution, in place: for each, the
    detector ``run(code, trace)`` runs again with every row between the window holding the onset
    and the one before added; an onset it finds in that gap replaces the coarse one."""
    if view_trace is trace:
        return
    budget = budget or ROW_BUDGET
    rows = view_trace._src.rows  # noqa: SLF001 - the selection made above
    steps = view_trace.steps
    done: dict[str, int | None] = {}
    for f in findings:
        r = int(np.searchsorted(steps, f.steps[0]))
        if r <= 0 or r >= len(rows) or rows[r] - rows[r - 1] <= 1 or len(done) >= REFINE_MAX:
            continue
        lo, hi = int(rows[r - 1]), int(rows[r])
        if f.code not in done:
            gap = np.arange(lo + 1, hi)
            if len(gap) > budget:
                gap = gap[-budget:]
            done[f.code] = _refined_onset(run, f, view(trace, np.union1d(rows, gap)),
                                          int(trace.steps[lo]), int(trace.steps[hi]))
        onset = done[f.code]
        if onset is not None:
            f.steps[0] = min(onset, f.steps[1])


def _refined_onset(run: Any, f: Finding, dense: Trace, lo: int, hi: int) -> int | None:
    try:
        again = [g for g in run(f.code, dense) if g.code == f.code]
    except Exception:  # noqa: BLE001 - the coarse onset stands
        return None
    same = [g for g in again if g.layer == f.layer] or again
    onsets = [g.steps[0] for g in same if lo < g.steps[0] <= hi]
    return min(onsets) if onsets else None
