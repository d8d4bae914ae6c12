"""Side-by-side comparison: a second heatmap showing another open run under the same cursor.

``MirrorState`` is a ``RunState`` holding one other run: it follows the main state's
step, layer, range and step window, and forwards the view's own clicks back to the main
state, so one cursor drives both runs. ``CompareSplit`` keeps both heatmaps on one metric,
locks their colour limits to one scale (the union of both runs' robust limits, or the
user's), and can show B − A (log10 B/A for norms) aligned by step and layer name.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from gui.state import Run, RunState


class MirrorState(RunState):
    """Shows ``run`` (another open run) while following ``main``'s cursor, layer and range."""

    def __init__(self, main: RunState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.main = main
        main.stepChanged.connect(self._follow_step)
        main.layerChanged.connect(self._follow_layer)
        main.rangeChanged.connect(self._follow_range)
        main.viewRangeChanged.connect(self._follow_view)
        main.findingChanged.connect(self._follow_finding)

    def show_run(self, run: Run | None) -> None:
        if (self.run is run) or (run is None and not self.runs):
            return
        self.runs = [run] if run is not None else []
        self.current = 0 if run is not None else -1
        self.runsChanged.emit()
        self._follow_step(self.main.step)
        self._follow_layer(self.main.layer)
        self._follow_range(self.main.step_range)

    def _follow_step(self, step: int) -> None:
        RunState.set_step(self, step)

    def _follow_layer(self, layer: str) -> None:
        RunState.set_layer(self, layer)

    def _follow_range(self, step_range: object) -> None:
        RunState.set_range(self, step_range)  # type: ignore[arg-type]

    def _follow_view(self, view_range: object) -> None:
        RunState.set_view_range(self, view_range)  # type: ignore[arg-type]

    def _follow_finding(self, finding: object) -> None:
        self.finding = finding  # marks only: B's heatmap outlines the same layers, no metric switch

    def set_view_range(self, view_range: tuple[float, float] | None) -> None:
        self.main.set_view_range(view_range)

    # A click in the mirrored view moves the one shared cursor.
    def set_step(self, step: int, force: bool = False) -> None:
        self.main.set_step(step, force)

    def set_layer(self, layer: str | None) -> None:
        self.main.set_layer(layer)


class CompareSplit(QSplitter):
    """The main view beside the same kind of view on the compare run (hidden when off)."""

    def __init__(self, main_view: QWidget, compare_view: QWidget, mirror: MirrorState,
                 parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)  # A above B: the dock keeps its width
        self.mirror = mirror
        self.main_view, self.compare_view = main_view, compare_view
        self.main_label, self.compare_label = QLabel(), QLabel()
        self.lock_box = QCheckBox("lock limits")
        self.lock_box.setToolTip("One colour scale for both runs (the union of their limits, or yours)")
        self.lock_box.setChecked(True)
        self.lock_box.toggled.connect(lambda _on: self.sync_levels())
        self.diff_box = QCheckBox("B − A")
        self.diff_box.setToolTip("B minus A per layer and step (log10 B/A for norms), aligned by step")
        self.diff_box.toggled.connect(self.set_difference)
        for label, view in ((self.main_label, main_view), (self.compare_label, compare_view)):
            box = QWidget(self)
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(2)
            label.setStyleSheet("font-weight: bold")
            head = QHBoxLayout()
            head.addWidget(label, 1)
            if view is compare_view:
                head.addWidget(self.lock_box)
                head.addWidget(self.diff_box)
            lay.addLayout(head)
            lay.addWidget(view, 1)
            self.addWidget(box)
        if hasattr(main_view, "metricChanged"):
            main_view.metricChanged.connect(self._follow_metric)
            for view in (main_view, compare_view):
                view.pyramidReady.connect(self.sync_levels)
            main_view.userLevelsChanged.connect(self.sync_levels)
        self.set_runs(None, None)

    def _follow_metric(self, key: str) -> None:
        if self.widget(1).isVisible() or self.mirror.run is not None:
            self.compare_view.set_metric(key)

    def set_difference(self, on: bool) -> None:
        """Show B − A in the compare heatmap (True) or B itself."""
        self.compare_view.diff_base = (lambda: self.mirror.main.run) if on else None
        self.compare_view._load_metric()
        self.sync_levels()

    def sync_levels(self) -> None:
        """One colour scale for both heatmaps when locked: the user's limits, else the union of both."""
        a, b = self.main_view, self.compare_view
        if not hasattr(a, "shared_levels"):
            return
        same = (a._pyr is not None and b._pyr is not None and a.metric_key == b.metric_key
                and b.diff_base is None and self.mirror.run is not None)
        levels = None
        if self.lock_box.isChecked() and same:
            (lo_a, hi_a), (lo_b, hi_b) = a._levels(), b._levels()
            levels = a._user_levels or (min(lo_a, lo_b), max(hi_a, hi_b))
        changed = (a.shared_levels, b.shared_levels) != (levels, levels)
        a.shared_levels = b.shared_levels = levels
        if changed:
            for view in (a, b):
                view._render()

    def set_runs(self, main: Run | None, other: Run | None) -> None:
        """Show ``other`` beside ``main`` (None: comparison off)."""
        if other is not None and hasattr(self.compare_view, "set_metric"):
            self.compare_view.set_metric(self.main_view.metric_key)
        self.mirror.show_run(other)
        on = other is not None
        self.widget(1).setVisible(on)
        self.main_label.setVisible(on)
        if on:
            self.main_label.setText(f"A: {main.name if main else ''}")
            self.compare_label.setText(f"B: {other.name or other.trace.path}")
