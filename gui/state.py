"""The app's model: open runs, the step cursor, the selected layer and finding.

Views subscribe to the signals and never hold analysis logic. Every setter clamps,
returns early when the value is unchanged (so views can set state from their own
signals without feedback loops), then emits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

import gui._compat  # noqa: F401 - PySide6 6.12.0 None-refcount workaround, see the module
from analysis.findings import Finding, Report
from analysis.trace import Trace
from gui.sidecar import Sidecar, finding_key


@dataclass
class Run:
    """One open run: its trace, its report (None until analysed) and display name."""

    trace: Trace
    report: Report | None = None
    name: str = ""
    notes: list[str] = field(default_factory=list)
    sidecar: Sidecar = field(default_factory=Sidecar)  # bookmarks, notes, suppressed, colour limits
    analysed: bool = False  # its analysis returned (with a report or a failure note)

    def awaits_findings(self) -> bool:
        """A long run opened in stages whose analysis is still out: heavy view reads wait for it
        (on 2 cores, the findings first)."""
        return bool(getattr(getattr(self, "series", None), "partial", False)) and not self.analysed

    @property
    def steps(self) -> np.ndarray:
        return self.trace.steps


class RunState(QObject):
    """Shared cursor state. ``step`` is a global step index; ``layer`` a module or parameter name."""

    runsChanged = Signal()  # the list of runs or the current run changed
    runUpdated = Signal(int)  # run index got new rows (live) or its report
    stepChanged = Signal(int)
    layerChanged = Signal(str)
    findingChanged = Signal(object)  # Finding | None
    rangeChanged = Signal(object)  # (first, last) step range to highlight, or None
    viewRangeChanged = Signal(object)  # (first, last) steps shown by the linked views, or None
    annotationsChanged = Signal()  # the current run's sidecar (bookmarks, notes, suppressed, limits)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs: list[Run] = []
        self.current = -1
        self.step = 0
        self.layer = ""
        self.finding: Finding | None = None
        self.step_range: tuple[int, int] | None = None
        self.view_range: tuple[float, float] | None = None

    # ------------------------------------------------------------------ runs
    @property
    def run(self) -> Run | None:
        return self.runs[self.current] if 0 <= self.current < len(self.runs) else None

    def add_run(self, run: Run, current: bool = True) -> int:
        """Append ``run``; it becomes the current run unless ``current`` is False and one is shown."""
        self.runs.append(run)
        if not current and self.run is not None:
            self.runsChanged.emit()  # a new tab; what the user reads stays put
            return len(self.runs) - 1
        self.current = len(self.runs) - 1
        self.runsChanged.emit()
        self.set_step(int(run.steps[0]) if run.trace.n_steps else 0, force=True)
        return self.current

    def close_run(self, index: int) -> None:
        if not 0 <= index < len(self.runs):
            return
        self.runs.pop(index).trace.close()
        self.current = min(self.current, len(self.runs) - 1)
        self.runsChanged.emit()

    def set_current(self, index: int) -> None:
        if index == self.current or not 0 <= index < len(self.runs):
            return
        self.current = index
        self.runsChanged.emit()
        self.set_step(self.step, force=True)

    # ------------------------------------------------------------------ cursor
    def logged_steps(self) -> np.ndarray:
        run = self.run
        return run.steps if run is not None else np.zeros(0, dtype=np.int64)

    def set_step(self, step: int, force: bool = False) -> None:
        """Move the cursor to the nearest logged step at or before ``step`` (clamped)."""
        steps = self.logged_steps()
        if len(steps):
            step = int(steps[max(int(np.searchsorted(steps, step, side="right")) - 1, 0)])
        else:
            step = max(int(step), 0)
        if step == self.step and not force:
            return
        self.step = step
        self.stepChanged.emit(step)

    def move(self, rows: int) -> None:
        """Move by ``rows`` logged steps (negative = back)."""
        steps = self.logged_steps()
        if not len(steps):
            return
        row = int(np.searchsorted(steps, self.step, side="left"))
        self.set_step(int(steps[int(np.clip(row + rows, 0, len(steps) - 1))]))

    def move_in(self, steps: np.ndarray, rows: int) -> None:
        """Move ``rows`` entries along sorted ``steps`` (a view's own data steps: snapshots, histograms)."""
        if not len(steps):
            self.move(rows)
            return
        side = "right" if rows > 0 else "left"
        i = int(np.searchsorted(steps, self.step, side=side)) + (rows - 1 if rows > 0 else rows)
        self.set_step(int(steps[int(np.clip(i, 0, len(steps) - 1))]))

    def first(self) -> None:
        steps = self.logged_steps()
        if len(steps):
            self.set_step(int(steps[0]))

    def last(self) -> None:
        steps = self.logged_steps()
        if len(steps):
            self.set_step(int(steps[-1]))

    # ------------------------------------------------------------------ selection
    def set_layer(self, layer: str | None) -> None:
        layer = layer or ""
        if layer == self.layer:
            return
        self.layer = layer
        self.layerChanged.emit(layer)

    def set_range(self, step_range: tuple[int, int] | None) -> None:
        if step_range == self.step_range:
            return
        self.step_range = step_range
        self.rangeChanged.emit(step_range)

    def set_view_range(self, view_range: tuple[float, float] | None) -> None:
        """The step window every linked view shows (zoom and pan); a change under 1e-6 of it is none."""
        if view_range is not None:
            a, b = float(min(view_range)), float(max(view_range))
            old = self.view_range
            if old is not None and max(abs(a - old[0]), abs(b - old[1])) <= 1e-6 * max(b - a, 1.0):
                return
            view_range = (a, b)
        elif self.view_range is None:
            return
        self.view_range = view_range
        self.viewRangeChanged.emit(view_range)

    def reveal(self, step: int) -> None:
        """Pan the linked window (same width) so that ``step`` is inside it."""
        rng = self.view_range
        if rng is None or rng[0] <= step <= rng[1]:
            return
        w = rng[1] - rng[0]
        self.set_view_range((step - w / 2, step + w / 2))

    def select_finding(self, finding: Finding | None) -> None:
        """Jump to a finding's evidence: first bad step, its layer, its step range."""
        if finding is not self.finding:
            self.finding = finding
            self.findingChanged.emit(finding)
        if finding is None:
            return
        self.set_range((finding.steps[0], finding.steps[1]))
        if finding.layer:
            self.set_layer(finding.layer)
        self.set_step(finding.steps[0])
        self.reveal(finding.steps[0])

    # ------------------------------------------------------------------ annotations (the sidecar)
    def _annotate(self, change: object) -> None:
        run = self.run
        if run is not None and change(run.sidecar) is not False:
            self.annotationsChanged.emit()

    def toggle_bookmark(self, step: int | None = None) -> None:
        """Bookmark the cursor (or ``step``); a second press there removes it."""
        step = int(self.step if step is None else step)

        def change(sc: Sidecar) -> None:
            if step in sc.bookmarks:
                sc.bookmarks.remove(step)
            else:
                sc.bookmarks = sorted(set(sc.bookmarks) | {step})
        self._annotate(change)

    def next_bookmark(self, delta: int = 1) -> None:
        """Jump to the next (or previous) bookmark or note after the cursor, wrapping around."""
        run = self.run
        if run is None:
            return
        marks = sorted(set(run.sidecar.bookmarks) | {n["step"] for n in run.sidecar.notes})
        if not marks:
            return
        after = [m for m in marks if (m > self.step if delta > 0 else m < self.step)]
        target = (after[0] if delta > 0 else after[-1]) if after else (marks[0] if delta > 0 else marks[-1])
        self.set_step(target)
        self.reveal(target)

    def add_note(self, text: str, step: int | None = None) -> None:
        text = text.strip()
        if text:
            step = int(self.step if step is None else step)
            self._annotate(lambda sc: sc.notes.append({"step": step, "text": text}))

    def is_suppressed(self, finding: Finding) -> bool:
        run = self.run
        return run is not None and finding_key(finding) in run.sidecar.suppressed

    def set_suppressed(self, finding: Finding, on: bool = True) -> None:
        """Mark a finding expected (hidden from the ranked list) or show it again."""
        key = finding_key(finding)

        def change(sc: Sidecar) -> bool:
            if (key in sc.suppressed) == on:
                return False
            (sc.suppressed.append if on else sc.suppressed.remove)(key)
            return True
        self._annotate(change)

    def set_levels(self, metric: str, levels: tuple[float, float] | None) -> None:
        """Colour limits locked for a heatmap metric (None: unlocked)."""
        def change(sc: Sidecar) -> bool:
            new = None if levels is None else [float(levels[0]), float(levels[1])]
            if sc.levels.get(metric) == new:
                return False
            if new is None:
                sc.levels.pop(metric, None)
            else:
                sc.levels[metric] = new
            return True
        self._annotate(change)
