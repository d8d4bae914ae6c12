"""Follow runs that are still being written (HDF5 SWMR): poll, extend, re-analyse, notice the end.

Every ``interval_ms`` the follower calls ``trace.refresh()`` on each live run; new rows
extend the run's curves (only the new rows of the ``(N, P)`` statistics are read) and
emit ``state.runUpdated``. Analysis re-runs in the loader's worker at most every
``analysis_interval_s``. The end of a run is noticed three ways: the writer closed the
file cleanly, the writer process is gone (same host: its pid from ``meta.env``), or no
row arrived for a while. An HDF5 SWMR reader does not see attribute updates of the
writer (``closed_cleanly``, ``steps_written``) until every handle of the file in this
process is closed, so when rows stop coming the follower reopens the trace.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal

from analysis.trace import open_trace
from gui.loader import Loader
from gui.series import series_of
from gui.state import Run, RunState


@dataclass
class _Follow:
    rows: int
    last_change: float = field(default_factory=time.monotonic)
    last_reopen: float = field(default_factory=time.monotonic)
    last_analysis: float = 0.0
    analysing: bool = False
    dirty: bool = False  # rows arrived since the last analysis started


def writer_alive(run: Run) -> bool | None:
    """Whether the writing process still exists: None when unknown (other host, no pid)."""
    env = run.trace.meta.get("env") or {}
    pid, host = env.get("pid"), env.get("hostname")
    if not isinstance(pid, int) or pid <= 0 or host != socket.gethostname():
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is dead for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


class LiveFollower(QObject):
    """Polls live runs; ``status(run)`` is a one-line live state for the status bar and banner."""

    statusChanged = Signal(object, str)  # Run, text ("" when not live and nothing to say)
    runReplaced = Signal(object, object)  # old Run, new Run (the file was reopened)

    def __init__(self, state: RunState, loader: Loader, parent: QObject | None = None,
                 interval_ms: int = 1000, analysis_interval_s: float = 5.0, reopen_after_s: float = 3.0,
                 idle: Callable[[], bool] | None = None, stale_after_s: float = 60.0) -> None:
        super().__init__(parent)
        self.idle = idle or (lambda: not loader.busy())
        self.state, self.loader = state, loader
        self.analysis_interval_s = analysis_interval_s
        self.reopen_after_s = reopen_after_s
        self.stale_after_s = stale_after_s
        self.follows: dict[int, tuple[Run, _Follow]] = {}
        self.messages: dict[int, str] = {}
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)
        loader.analysed.connect(self._on_analysed)

    # ------------------------------------------------------------------ registration
    def watch(self, run: Run) -> bool:
        """Follow ``run`` if its file is open in SWMR mode and not closed cleanly."""
        if not run.trace.live:
            if not run.trace.closed_cleanly:  # a crashed run, its file already released
                self.messages[id(run)] = f"run ended at step {self._last(run)} without a clean close"
                self.statusChanged.emit(run, self.messages[id(run)])
            return False
        self.follows[id(run)] = (run, _Follow(rows=run.trace.n_steps))
        self.messages[id(run)] = self._live_text(run, 0.0)
        self.statusChanged.emit(run, self.messages[id(run)])
        if not self.timer.isActive():
            self.timer.start()
        return True

    def is_live(self, run: Run | None) -> bool:
        return run is not None and id(run) in self.follows

    def status(self, run: Run | None) -> str:
        return self.messages.get(id(run), "") if run is not None else ""

    # ------------------------------------------------------------------ polling
    def poll(self) -> None:
        """One round over every followed run (the timer calls this every second)."""
        open_ids = {id(r) for r in self.state.runs}
        for key in [k for k in self.follows if k not in open_ids]:
            self.follows.pop(key)
        for run, info in list(self.follows.values()):
            self._poll_run(run, info)
        if not self.follows:
            self.timer.stop()

    def _poll_run(self, run: Run, info: _Follow) -> None:
        now = time.monotonic()
        try:
            grew = run.trace.refresh()
        except Exception as exc:  # noqa: BLE001 - a vanished or damaged file ends the follow
            self._end(run, f"run ended at step {self._last(run)}: the file can no longer be read "
                           f"({type(exc).__name__})", reopen=False)
            return
        alive = writer_alive(run)
        if grew:
            info.last_change, info.rows, info.dirty = now, run.trace.n_steps, True
            series_of(run)
            self._emit_updated(run)
        quiet = now - info.last_change
        # A reader never sees the writer's close (attributes are invisible across processes
        # under SWMR): once rows stop for reopen_after_s, reopen the file to learn how it ended.
        silent = quiet >= self.reopen_after_s and now - info.last_reopen >= self.reopen_after_s
        if (alive is False or silent) and self.idle():  # a busy worker would keep the stale view
            info.last_reopen = now
            try:
                run, regrew = self._reopen(run, info)
            except Exception as exc:  # noqa: BLE001 - the file vanished between two polls
                self._end(run, f"run ended at step {self._last(run)}: the file can no longer be "
                               f"read ({type(exc).__name__})", reopen=False)
                return
            if regrew:
                info.last_change, info.rows, info.dirty = now, run.trace.n_steps, True
        if not run.trace.live:
            self._end(run, f"run closed cleanly at step {self._last(run)}")
            return
        if alive is False:
            self._end(run, f"run ended at step {self._last(run)} without a clean close "
                           f"(the writer process is gone)")
            return
        if info.dirty and not info.analysing and now - info.last_analysis >= self.analysis_interval_s:
            self._analyse(run, info)
        text = self._live_text(run, now - info.last_change)
        if text != self.messages.get(id(run)):
            self.messages[id(run)] = text
            self.statusChanged.emit(run, text)

    def _reopen(self, run: Run, info: _Follow) -> tuple[Run, bool]:
        """Close and reopen the file as a new ``Run`` in the same place; returns it and whether rows grew.

        A SWMR reader sees appended rows after ``refresh()`` but not the writer's attribute
        updates (``steps_written``, ``closed_cleanly``) while any handle to the file is open
        in this process, so this is how a clean close is noticed (and, while the reader caps
        rows at a stale ``steps_written``, how new rows are). A run's trace never changes
        under the views: the reopened file becomes a new ``Run`` and ``runsChanged`` fires.
        """
        before = run.trace.n_steps
        path, rank = run.trace.paths[0], run.trace.rank_index
        run.trace.close()
        fresh = open_trace(path)
        new = Run(trace=fresh.rank(rank) if rank else fresh, report=run.report, name=run.name,
                  notes=run.notes)
        prev = getattr(run, "series", None)
        if prev is not None:
            new.series = prev  # type: ignore[attr-defined] - extended by series_of below
        series_of(new)
        index = next((i for i, r in enumerate(self.state.runs) if r is run), None)
        self.follows.pop(id(run), None)
        self.follows[id(new)] = (new, info)
        self.messages[id(new)] = self.messages.pop(id(run), "")
        info.analysing = False  # an analysis still running reports on the old object
        if index is not None:
            self.state.runs[index] = new
            self.runReplaced.emit(run, new)
            self.state.runsChanged.emit()
        return new, new.trace.n_steps != before

    def _emit_updated(self, run: Run) -> None:
        index = next((i for i, r in enumerate(self.state.runs) if r is run), None)
        if index is not None:
            self.state.runUpdated.emit(index)

    def _analyse(self, run: Run, info: _Follow) -> None:
        info.analysing, info.dirty, info.last_analysis = True, False, time.monotonic()
        self.loader.analyse(run)

    def _on_analysed(self, run: Run, *_rest: object) -> None:
        entry = self.follows.get(id(run))
        if entry is not None:
            entry[1].analysing = False

    def _end(self, run: Run, text: str, reopen: bool = True) -> None:
        """Stop following; a final analysis sees every row and the true close state."""
        self.follows.pop(id(run), None)
        self.messages[id(run)] = text  # the banner; the final report notes the unclean close itself
        self.statusChanged.emit(run, text)
        if reopen:
            self.loader.analyse(run)
        self._emit_updated(run)

    # ------------------------------------------------------------------ text
    @staticmethod
    def _last(run: Run) -> int:
        return int(run.trace.steps[-1]) if run.trace.n_steps else 0

    def _live_text(self, run: Run, quiet_s: float) -> str:
        text = f"live: step {self._last(run):,}, {quiet_s:.0f} s ago"
        if quiet_s >= self.stale_after_s:  # writer unknown (other host / no pid) and silent
            text += " — no new rows for a while: the run may have ended without a clean close"
        return text

    def stop(self) -> None:
        self.timer.stop()
        self.follows.clear()
