"""The window's view plumbing: focused stepping, raising a finding's views, the rank switch.

A mixin of ``MainWindow`` (kept apart so each module stays small); it relies on the
window's ``state``, ``timeline``, ``ranks``, ``views``, ``docks_by_view`` and
``_on_run_replaced``.
"""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QWidget

from analysis.evidence import evidence_views
from analysis.findings import Finding
from gui.series import compute_series
from gui.state import Run


class WindowViews:
    """← / → along the focused view's steps, a finding's views to the front, one rank of a run."""

    def focused_view(self) -> QWidget | None:
        """The data view holding the keyboard focus (None: the timeline or nothing)."""
        focus = QApplication.focusWidget()
        if focus is None:
            return None
        return next((v for v in self.views.values() if focus is v or v.isAncestorOf(focus)), None)

    def step_focused(self, rows: int) -> None:
        """← / →: along the focused view's own steps (the weight view: snapshots), else logged steps."""
        view = self.focused_view()
        steps = view.logged_steps() if view is not None and hasattr(view, "logged_steps") else None
        if steps is not None and len(steps):
            self.state.move_in(steps, rows)
        else:
            self.state.move(rows)

    def show_view(self, name: str) -> None:
        """Bring view ``name`` (``layer``, ``histogram``…) to the front of its dock's tabs."""
        dock = self.docks_by_view.get(name)
        if dock is not None:
            dock.show()
            dock.raise_()

    def _raise_evidence(self, finding: Finding | None) -> None:
        """A finding shown in the histograms (and not the weights) brings the histogram tab forward."""
        if finding is None:
            return
        views = evidence_views(finding)
        if "histogram" in views and "layer" not in views:
            self.show_view("histogram")
        elif "layer" in views:
            self.show_view("layer")

    def _link_ranks(self) -> None:
        lanes = list(self.timeline.lanes.values())
        self.ranks.link_x(lanes[0].plot if lanes else None)

    def set_rank(self, rank: int) -> None:
        """Show rank ``rank``'s own file of the current (multi-process) run in every view."""
        old = self.state.run
        if old is None or not 0 <= rank < old.trace.n_ranks or rank == old.trace.rank_index:
            return
        new = Run(trace=old.trace.rank(rank), report=old.report, name=old.name, notes=old.notes)
        for attr in ("sidecar",):
            if hasattr(old, attr):
                setattr(new, attr, getattr(old, attr))
        new.series = compute_series(new.trace)  # type: ignore[attr-defined] - see gui.series.series_of
        self._on_run_replaced(old, new)
        self.state.runs[self.state.current] = new
        self.state.runsChanged.emit()
