"""The metric tree: every recorded per-step series of the current run, per layer, searchable.

Groups are ``params · <stat>`` and ``modules · <stat>`` (one child per parameter or
module) and the per-step batch summaries. Double-click (or Enter) plots a series in
a lane of its own; select several and "Plot together" puts them in one lane;
"Add to lane" adds them to an existing lane. The lanes are the timeline's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.series import SeriesRef, recorded_series
from gui.state import RunState
from gui.views.timeline_view import TimelineView

REF_ROLE = Qt.ItemDataRole.UserRole


class MetricTree(QWidget):
    """Filterable tree of ``SeriesRef``; plots into ``timeline``'s lanes."""

    def __init__(self, state: RunState, timeline: TimelineView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.timeline = state, timeline
        self.refs: dict[str, list[SeriesRef]] = {}
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("search series: layer or statistic, substring or regex")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.itemActivated.connect(self._on_activated)
        self.plot_button = QPushButton("Plot together", self)
        self.plot_button.setToolTip("Plot the selected series in one new lane")
        self.plot_button.clicked.connect(lambda: self.plot_selected(None))
        self.add_button = QToolButton(self)
        self.add_button.setText("Add to lane")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_button.setMenu(QMenu(self.add_button))
        self.add_button.menu().aboutToShow.connect(self._fill_lane_menu)
        buttons = QHBoxLayout()
        buttons.addWidget(self.plot_button)
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addLayout(buttons)
        state.runsChanged.connect(self.refill)
        self.refill()

    # ------------------------------------------------------------------ content
    def refill(self) -> None:
        run = self.state.run
        refs = recorded_series(run.trace) if run is not None else {}
        if refs.keys() == self.refs.keys() and all(refs[k] == self.refs[k] for k in refs):
            return
        self.refs = refs
        self.tree.clear()
        for group, items in refs.items():
            top = QTreeWidgetItem([f"{group}  ({len(items)})"])
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            for ref in items:
                child = QTreeWidgetItem([ref.column or ref.stat])
                child.setData(0, REF_ROLE, ref)
                child.setToolTip(0, ref.label)
                top.addChild(child)
            self.tree.addTopLevelItem(top)
        self._apply_filter(self.filter.text())

    def _apply_filter(self, text: str) -> None:
        text = text.strip()
        try:
            rx = re.compile(text, re.IGNORECASE) if text else None
        except re.error:
            rx = re.compile(re.escape(text), re.IGNORECASE)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            group_hit = rx is not None and bool(rx.search(top.text(0)))
            shown = 0
            for j in range(top.childCount()):
                child = top.child(j)
                ref: SeriesRef = child.data(0, REF_ROLE)
                hit = rx is None or group_hit or bool(rx.search(ref.label))
                child.setHidden(not hit)
                shown += hit
            top.setHidden(shown == 0)
            top.setExpanded(rx is not None and shown > 0 and shown <= 50)

    def visible_refs(self) -> list[SeriesRef]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            kids = [top.child(j) for j in range(top.childCount())]
            out += [k.data(0, REF_ROLE) for k in kids if not k.isHidden()]
        return out

    # ------------------------------------------------------------------ plotting
    def selected_refs(self) -> list[SeriesRef]:
        return [it.data(0, REF_ROLE) for it in self.tree.selectedItems() if it.data(0, REF_ROLE) is not None]

    def plot_selected(self, lane: str | None) -> str | None:
        refs = self.selected_refs()
        return self.timeline.add_series(refs, lane) if refs else None

    def _on_activated(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        ref = item.data(0, REF_ROLE)
        if ref is not None:
            self.timeline.add_series([ref])

    def _fill_lane_menu(self) -> None:
        menu = self.add_button.menu()
        menu.clear()
        for name in self.timeline.lanes:
            menu.addAction(name, lambda n=name: self.plot_selected(n))

    def finder_entries(self) -> list[tuple[str, Callable[[], None]]]:
        """``(label, plot it)`` for every series (for the Ctrl+P finder)."""
        return [(ref.label, lambda r=ref: self.timeline.add_series([r])) for items in self.refs.values()
                for ref in items]
