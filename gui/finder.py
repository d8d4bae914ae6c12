"""The finder (Ctrl+P): one search box over layers, metrics, findings, bookmarks and notes.

Matching is fuzzy (the letters in order) or a regular expression, case-insensitive;
``score`` is plain Python so it is tested without a display. Choosing an entry acts
on the one ``RunState``: a layer selects it, a heatmap metric shows it, a series opens
its lane, a finding jumps to its evidence, a bookmark moves the cursor. The bookmark
and note keys live here too (they write the sidecar through the state).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QVBoxLayout,
)

from analysis.views_data import METRICS

if TYPE_CHECKING:
    from gui.main_window import MainWindow

MAX_SHOWN = 200


def score(query: str, text: str) -> float | None:
    """How well ``text`` matches ``query`` (higher is better), None when it does not match.

    A substring scores highest (earlier is better), then the letters of the query in
    order with few gaps (fuzzy), then a regular-expression match.
    """
    q, t = query.strip().lower(), text.lower()
    if not q:
        return 0.0
    at = t.find(q)
    if at >= 0:
        return 1000.0 - at
    pos, gaps, last = 0, 0, -1
    for ch in q:
        found = t.find(ch, pos)
        if found < 0:
            break
        gaps += found - last - 1 if last >= 0 else 0
        last, pos = found, found + 1
    else:
        return 500.0 - gaps
    try:
        return 100.0 if re.search(query.strip(), text, re.IGNORECASE) else None
    except re.error:
        return None


@dataclass
class Entry:
    kind: str
    text: str
    act: Callable[[], None]


def entries(win: MainWindow) -> list[Entry]:
    """Everything the finder can reach in the current run."""
    state, run = win.state, win.state.run
    if run is None:
        return []
    out: list[Entry] = []
    if run.report is not None:
        for f in run.report.findings:
            out.append(Entry("finding", f"{f.title}  [{f.code}]", lambda f=f: state.select_finding(f)))
    heatmap = win.views.get("heatmap_view")
    if heatmap is not None and hasattr(heatmap, "set_metric"):
        for key, m in METRICS.items():
            out.append(Entry("heatmap metric", f"{m.label}  ({key})", lambda k=key: _show_metric(win, k)))
    tree = getattr(win, "metric_tree", None)
    if tree is not None:
        out += [Entry("series", label, act) for label, act in tree.finder_entries()]
    types = dict(zip(run.trace.module_names, run.trace.module_types))
    for name in dict.fromkeys(run.trace.module_names + run.trace.param_names):
        label = f"{name}  ({types[name]})" if name in types else name
        out.append(Entry("layer", label, lambda n=name: state.set_layer(n)))
    for step in run.sidecar.bookmarks:
        out.append(Entry("bookmark", f"step {step:,}", lambda s=step: _goto(win, s)))
    for note in run.sidecar.notes:
        text = f"step {note['step']:,}: {note['text']}"
        out.append(Entry("note", text, lambda s=note["step"]: _goto(win, s)))
    return out


def _goto(win: MainWindow, step: int) -> None:
    win.state.set_step(step)
    win.state.reveal(step)


def _show_metric(win: MainWindow, key: str) -> None:
    win.views["heatmap_view"].set_metric(key)
    dock = next((d for d in win.view_docks if d.objectName() == "heatmap_view"), None)
    if dock is not None:
        dock.show()
        dock.raise_()


def search(items: list[Entry], query: str) -> list[Entry]:
    """Matching entries, best first (the order of ``items`` breaks ties)."""
    scored = [(s, i, e) for i, e in enumerate(items)
              if (s := score(query, f"{e.kind} {e.text}" if query.strip() else e.text)) is not None]
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [e for _, _, e in scored]


class FinderDialog(QDialog):
    """A search field over a ranked list; Enter (or a click) runs the highlighted entry."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.setWindowTitle("Find: layers, metrics, findings, bookmarks")
        self.win = win
        self.items = entries(win)
        self.shown: list[Entry] = []
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("type to search (fuzzy or regex): a layer, a metric, a finding…")
        self.list = QListWidget(self)
        lay = QVBoxLayout(self)
        lay.addWidget(self.edit)
        lay.addWidget(self.list, 1)
        self.edit.textChanged.connect(self._fill)
        self.edit.returnPressed.connect(self.accept_current)
        self.list.itemActivated.connect(lambda _item: self.accept_current())
        self.resize(640, 420)
        self._fill("")

    def _fill(self, query: str) -> None:
        self.shown = search(self.items, query)[:MAX_SHOWN]
        self.list.clear()
        for e in self.shown:
            self.list.addItem(QListWidgetItem(f"{e.kind}:  {e.text}"))
        if self.shown:
            self.list.setCurrentRow(0)

    def keyPressEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up) and self.shown:
            row = self.list.currentRow() + (1 if event.key() == Qt.Key.Key_Down else -1)
            self.list.setCurrentRow(max(0, min(row, len(self.shown) - 1)))
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept_current()
            return
        super().keyPressEvent(event)

    def accept_current(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.shown):
            self.shown[row].act()
        self.accept()


def open_finder(win: MainWindow) -> FinderDialog:
    dlg = FinderDialog(win)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.open()
    dlg.edit.setFocus()
    win.finder_dialog = dlg
    return dlg


def add_note_dialog(win: MainWindow) -> None:
    if win.state.run is None:
        return
    text, ok = QInputDialog.getText(win, "Note", f"Note at step {win.state.step:,}:")
    if ok:
        win.state.add_note(text)


def _add(win: MainWindow, menu: QMenu, text: str, keys: str, fn: Callable[[], object]) -> QAction:
    act = QAction(text, win)
    act.setShortcut(QKeySequence(keys))
    act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    act.triggered.connect(lambda _checked=False: fn())
    menu.addAction(act)
    win.addAction(act)
    return act


def install(win: MainWindow, menu: QMenu) -> dict[str, QAction]:
    """The finder and the bookmark/note keys, listed in ``menu``."""
    s = win.state
    return {
        "finder": _add(win, menu, "Find layer, metric, finding…", "Ctrl+P", lambda: open_finder(win)),
        "bookmark": _add(win, menu, "Bookmark the cursor (again: remove)", "B", s.toggle_bookmark),
        "next_bookmark": _add(win, menu, "Next bookmark or note", "'", lambda: s.next_bookmark(1)),
        "prev_bookmark": _add(win, menu, "Previous bookmark or note", "Shift+'", lambda: s.next_bookmark(-1)),
        "note": _add(win, menu, "Add a note at the cursor…", "Ctrl+M", lambda: add_note_dialog(win)),
    }
