"""Side-by-side comparison: a second heatmap showing another open run under the same cursor.

``MirrorState`` is a ``RunState`` holding one other run: it follows the main state's
step, layer and range, and forwards the view's own clicks back to the main state, so
one cursor drives both runs.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from gui.state import Run, RunState


class MirrorState(RunState):
    """Shows ``run`` (another open run) while following ``main``'s cursor, layer and range."""

    def __init__(self, main: RunState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.main = main
        main.stepChanged.connect(self._follow_step)
        main.layerChanged.connect(self._follow_layer)
        main.rangeChanged.connect(self._follow_range)

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

    # A click in the mirrored view moves the one shared cursor.
    def set_step(self, step: int, force: bool = False) -> None:
        self.main.set_step(step, force)

    def set_layer(self, layer: str | None) -> None:
        self.main.set_layer(layer)


class CompareSplit(QSplitter):
    """The main view beside the same kind of view on the compare run (hidden when off)."""

    def __init__(self, main_view: QWidget, compare_view: QWidget, mirror: MirrorState,
                 parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.mirror = mirror
        self.main_view, self.compare_view = main_view, compare_view
        self.main_label, self.compare_label = QLabel(), QLabel()
        for label, view in ((self.main_label, main_view), (self.compare_label, compare_view)):
            box = QWidget(self)
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(2)
            label.setStyleSheet("font-weight: bold")
            lay.addWidget(label)
            lay.addWidget(view, 1)
            self.addWidget(box)
        self.set_runs(None, None)

    def set_runs(self, main: Run | None, other: Run | None) -> None:
        """Show ``other`` beside ``main`` (None: comparison off)."""
        self.mirror.show_run(other)
        on = other is not None
        self.widget(1).setVisible(on)
        self.main_label.setVisible(on)
        if on:
            self.main_label.setText(f"A: {main.name if main else ''}")
            self.compare_label.setText(f"B: {other.name or other.trace.path}")
