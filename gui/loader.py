"""Open and analyse traces off the UI thread; results come back by (queued) signal.

``Loader.open(path)`` reads the trace header and the timeline's curves in a worker
(``loaded(run)`` or ``failed(path, one_line_message)``); on a big trace the 1-D curves
come first and the grad-norm lane follows the analysis (``seriesReady(run)``), so the window shows
the run in about a second. ``Loader.analyse(run)`` runs every detector on a separate
read handle, so the UI's ``Trace`` is never touched by two threads at once, and emits
``analysed(run, report_or_None, extras)``; the steps where anything went NaN/Inf (the
overview's ticks, an O(N·P) scan) are searched after it, never delaying the findings,
and arrive as ``eventsFound(run, steps)``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from analysis.errors import TraceError
from analysis.findings import Report
from analysis.runner import analyze
from analysis.trace import Trace, open_trace
from gui.series import compute_series, is_big, nonfinite_events
from gui.state import Run

AnalyzeFn = Callable[[Trace], Report]


def display_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0] or path


class _Relay(QObject):
    """Lives in the UI thread; the worker emits ``done`` and ``deliver`` runs here (queued)."""

    done = Signal(object)

    def __init__(self, parent: QObject, callback: Callable[[Any], None]) -> None:
        super().__init__(parent)
        self.callback = callback
        self.done.connect(self.deliver)

    @Slot(object)
    def deliver(self, result: Any) -> None:
        self.callback(result)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay
        self.setAutoDelete(False)

    def run(self) -> None:
        self.relay.done.emit(self.fn())


class Loader(QObject):
    """Worker-thread file opening and analysis. ``wait()`` blocks until every job is done."""

    loaded = Signal(object)  # Run (with .series)
    failed = Signal(str, str)  # path, one-line message
    analysed = Signal(object, object, object)  # Run, Report | None, {"error": ..., "n_steps": ...}
    seriesReady = Signal(object)  # Run whose complete timeline curves replaced the first, partial ones
    eventsFound = Signal(object, object)  # Run, steps where anything went NaN/Inf (np.ndarray)

    def __init__(self, parent: QObject | None = None, analyze_fn: AnalyzeFn | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.analyze_fn: AnalyzeFn = analyze_fn or analyze
        self._jobs: dict[int, tuple[_Job, _Relay]] = {}
        self._keys = itertools.count()
        self._analysing: set[int] = set()  # runs (id) whose analysis is in flight

    # ------------------------------------------------------------------ plumbing
    def _submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None]) -> None:
        key = next(self._keys)

        def finish(result: Any) -> None:
            job_relay = self._jobs.pop(key, None)
            if job_relay is not None:
                job_relay[1].deleteLater()
            on_done(result)

        relay = _Relay(self, finish)
        job = _Job(fn, relay)
        self._jobs[key] = (job, relay)
        self.pool.start(job)

    def busy(self) -> bool:
        return bool(self._jobs)

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the pool is idle (for tests and shutdown); queued results still need events."""
        return self.pool.waitForDone(msecs)

    # ------------------------------------------------------------------ open
    def open(self, path: str) -> None:
        """Open ``path`` in a worker: emits ``loaded(run)`` or ``failed(path, message)``."""
        path = os.fspath(path)
        self._submit(lambda: _open_job(path), self._opened)

    def _opened(self, result: tuple[str, Any]) -> None:
        kind, value = result
        if kind != "ok":
            self.failed.emit(*value)
            return
        self.loaded.emit(value)  # the window adds the run and (usually) asks for its analysis here
        if getattr(value.series, "partial", False) and id(value) not in self._analysing:
            self.complete_series(value)  # else after the analysis: the findings come first

    def complete_series(self, run: Run) -> None:
        """The grad-norm lane of a big run, reduced in a worker; ``seriesReady(run)`` when done."""
        trace = run.trace

        def done(result: Any) -> None:
            current = getattr(run, "series", None)
            if isinstance(result, Exception) or current is None or not current.partial:
                return
            if result.n_rows == current.n_rows:  # rows a live writer added meanwhile: series_of extends
                result.events.update(current.events)
                run.series = result  # type: ignore[attr-defined]
                self.seriesReady.emit(run)

        self._submit(lambda: _guard(lambda: compute_series(trace)), done)

    # ------------------------------------------------------------------ analyse
    def analyse(self, run: Run) -> None:
        """Run every detector in a worker on its own handle: emits ``analysed(run, report, extras)``."""
        paths = list(run.trace.paths)
        # In-memory traces, and live files: HDF5 cannot hold two SWMR handles to one file in a
        # process ("can't insert duplicate key"), so a live run is analysed on its own handle.
        trace = run.trace if not os.path.isfile(paths[0]) or run.trace.live else None
        fn = self.analyze_fn

        def found(steps: Any) -> None:
            if not isinstance(steps, Exception):  # the overview ticks are optional
                self.eventsFound.emit(run, steps)

        def done(result: tuple[Report | None, dict]) -> None:
            self._analysing.discard(id(run))
            self.analysed.emit(run, *result)
            if getattr(getattr(run, "series", None), "partial", False):
                self.complete_series(run)
            self._submit(lambda: _guard(lambda: _events_job(paths[0], trace)), found)

        self._analysing.add(id(run))
        self._submit(lambda: _analyse_job(paths[0], trace, fn), done)


def _open_job(path: str) -> tuple[str, Any]:
    try:
        trace = open_trace(path)
    except TraceError as exc:
        return "error", (path, str(exc))
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line in a dialog
        return "error", (path, f"{path}: cannot open ({type(exc).__name__}: {exc})".splitlines()[0])
    try:
        series = compute_series(trace, grad_norm=not is_big(trace))
    except Exception as exc:  # noqa: BLE001
        trace.close()
        return "error", (path, f"{path}: corrupt trace ({type(exc).__name__}: {exc})".splitlines()[0])
    run = Run(trace=trace, name=display_name(path))
    run.series = series  # type: ignore[attr-defined] - cached curves, see gui.series.series_of
    return "ok", run


def _analyse_job(path: str, trace: Trace | None, fn: AnalyzeFn) -> tuple[Report | None, dict]:
    own = trace is None
    extras: dict[str, Any] = {}
    try:
        if own:
            trace = open_trace(path)
        report = fn(trace)
        extras["n_steps"] = trace.n_steps
        return report, extras
    except Exception as exc:  # noqa: BLE001 - a failed analysis must not take the app down
        extras["error"] = f"analysis failed: {type(exc).__name__}: {exc}".splitlines()[0]
        return None, extras
    finally:
        if own and trace is not None:
            trace.close()


def _guard(fn: Callable[[], Any]) -> Any:
    """``fn()``, or the exception it raised (a worker never raises)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - optional extras: the caller drops them
        return exc


def _events_job(path: str, trace: Trace | None) -> Any:
    """Steps where anything went NaN/Inf, on a handle of its own (as the analysis)."""
    if trace is not None:
        return nonfinite_events(trace)
    with open_trace(path) as own:
        return nonfinite_events(own)
