"""The main window: run tabs, root-cause panel, timeline, and the layer/heatmap/outputs docks.

Files open in a worker (``gui.loader``); a bad file shows a non-blocking error dialog
with its one-line reason and the app keeps running. Live files are followed by
``gui.live``. The root-cause panel is shown and focused first on every open.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QSettings, Qt, QThreadPool
from PySide6.QtGui import QKeySequence, QPixmapCache
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from analysis.findings import Finding, Report
from gui import finder, shortcuts, sidecar
from gui._window_io import OTHER_VIEWS, WindowIO
from gui._window_views import WindowViews
from gui.compare import CompareSplit, MirrorState
from gui.live import LiveFollower
from gui.loader import AnalyzeFn, Loader
from gui.state import Run, RunState
from gui.views._empty import EmptyGuard
from gui.views.findings_panel import FindingsPanel
from gui.views.metric_tree import MetricTree
from gui.views.rank_lanes import RankLanes
from gui.views.timeline_view import TimelineView

TABBED_WITH = {"histogram_view": "layer"}  # module → the view whose dock it shares as a tab
TRACE_FILTER = "Trainwreck traces (*.h5 *.hdf5);;All files (*)"
PIXMAP_CACHE_KB = 256 * 1024  # room for every open view's axis caches (about 2 MB an axis at 1600 px)
ErrorDialog = Callable[[str, str], object]


def make_view(module: str, cls: str, title: str, state: RunState, parent: QWidget) -> QWidget:
    """The other views, imported defensively: a placeholder label until their module exists."""
    try:
        view_cls = getattr(importlib.import_module(f"gui.views.{module}"), cls)
    except (ImportError, AttributeError):
        label = QLabel(f"{title}\n(view not available yet)")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setObjectName("muted")
        return label
    return view_cls(state, parent)


class MainWindow(WindowIO, WindowViews, QMainWindow):
    """Everything the user sees; ``open_paths`` is the way in."""

    def __init__(self, settings: QSettings | None = None, analyze_fn: AnalyzeFn | None = None,
                 error_dialog: ErrorDialog | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Trainwreck")
        self.settings = settings if settings is not None else QSettings("Trainwreck", "Trainwreck")
        self.state = RunState(self)
        self.loader = Loader(self, analyze_fn)
        self.live = LiveFollower(self.state, self.loader, self, idle=self.workers_idle)
        self.player = shortcuts.Player(self.state, self)
        self.error_dialog: ErrorDialog = error_dialog or self._error_box
        self.pending: set[str] = set()
        self._background: set[str] = set()  # paths opening as background tabs
        self._auto_selected: set[int] = set()
        self._memory: dict[int, tuple[int, str, Finding | None, tuple[int, int] | None]] = {}
        self._shown_run: Run | None = None
        self._build_central()
        self._build_docks()
        self._build_menus()
        self._build_status()
        self.setAcceptDrops(True)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        self.loader.analysed.connect(self._on_analysed)
        self.loader.seriesReady.connect(self._on_series_ready)
        self.loader.eventsFound.connect(self._on_events)
        self.live.statusChanged.connect(self._on_live_status)
        self.live.runReplaced.connect(self._on_run_replaced)
        self.state.runsChanged.connect(self._on_runs_changed)
        self.state.stepChanged.connect(self._on_step)
        self.state.layerChanged.connect(self._on_layer)
        self.state.runUpdated.connect(self._on_run_grew)
        self.state.annotationsChanged.connect(self.save_sidecar)
        self._last_rows: dict[int, int] = {}
        # Each plot axis caches a pixmap as large as its plot (its grid lines cover it): Qt's default
        # 10 MB pixmap cache held fewer than the open views' axes, so every zoom frame re-rendered them.
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), PIXMAP_CACHE_KB))
        self.resize(1600, 1000)

    # ------------------------------------------------------------------ layout
    def _build_central(self) -> None:
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.tabs = QTabBar()
        self.tabs.setTabsClosable(True)
        self.tabs.setExpanding(False)
        self.tabs.setDocumentMode(True)
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tabs.currentChanged.connect(self.state.set_current)
        self.tabs.tabCloseRequested.connect(self.close_run)
        self.timeline = TimelineView(self.state, central)
        self.ranks = RankLanes(self.state, central)  # every rank of a multi-process run
        self.ranks.rankRequested.connect(self.set_rank)
        self.timeline.lanesChanged.connect(self._link_ranks)
        self._link_ranks()
        lay.addWidget(self.tabs)
        lay.addWidget(self.timeline, 1)
        lay.addWidget(self.ranks)
        self.setCentralWidget(central)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.setDockNestingEnabled(True)
        self.findings = FindingsPanel(self.state, self)
        self.findings_dock = self._dock("Root cause", self.findings, Qt.DockWidgetArea.LeftDockWidgetArea,
                                        "rootcause")
        self.metric_tree = MetricTree(self.state, self.timeline, self)
        self.metrics_dock = self._dock("Metrics", self.metric_tree, Qt.DockWidgetArea.LeftDockWidgetArea,
                                       "metrics")
        self.tabifyDockWidget(self.findings_dock, self.metrics_dock)
        self.findings_dock.raise_()
        self.views: dict[str, QWidget] = {}
        self.view_docks: list[QDockWidget] = []
        self.docks_by_view: dict[str, QDockWidget] = {}
        for module, cls, title in OTHER_VIEWS:
            view = make_view(module, cls, title, self.state, self)
            self.views[module] = view
            dock = self._dock(title, view, Qt.DockWidgetArea.BottomDockWidgetArea, module)
            self.docks_by_view[module.removesuffix("_view")] = dock
            if module in TABBED_WITH:
                continue
            if self.view_docks:
                self.splitDockWidget(self.view_docks[-1], dock, Qt.Orientation.Horizontal)
            self.view_docks.append(dock)
        for module, beside in TABBED_WITH.items():  # the layer's histograms share the layer detail's place
            tab = self.docks_by_view[module.removesuffix("_view")]
            self.tabifyDockWidget(self.docks_by_view[beside], tab)
            self.docks_by_view[beside].raise_()
        self.state.findingChanged.connect(self._raise_evidence)
        self._build_compare()
        for dock in self.docks_by_view.values():  # no empty axes while nothing is open
            dock.setWidget(EmptyGuard(self.state, dock.widget(), dock))

    def _build_compare(self) -> None:
        """A second heatmap on the run picked in the timeline's Compare box, beside the first."""
        main_view = self.views.get("heatmap_view")
        if main_view is None or type(main_view).__name__ != "HeatmapView":
            self.compare_split = None
            return
        self.mirror = MirrorState(self.state, self)
        compare_view = type(main_view)(self.mirror, self)
        self.compare_split = CompareSplit(main_view, compare_view, self.mirror, self)
        self.view_docks[0].setWidget(self.compare_split)
        self.timeline.compareChanged.connect(lambda _i: self._sync_compare())
        self.state.runsChanged.connect(self._sync_compare)

    def _sync_compare(self) -> None:
        if self.compare_split is None:
            return
        index = self.timeline.compare_index
        other = self.state.runs[index] if index is not None and index < len(self.state.runs) else None
        self.compare_split.set_runs(self.state.run, other if other is not self.state.run else None)

    def _apply_sizes(self) -> None:
        w, h = max(self.width(), 800), max(self.height(), 600)
        self.resizeDocks([self.findings_dock], [int(w * (0.27 if w >= 1500 else 0.28))],
                         Qt.Orientation.Horizontal)
        self.resizeDocks(self.view_docks[:1], [int(h * 0.42)], Qt.Orientation.Vertical)
        each = int((w * 0.72) / max(len(self.view_docks), 1))
        self.resizeDocks(self.view_docks, [each] * len(self.view_docks), Qt.Orientation.Horizontal)

    def showEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().showEvent(event)
        if not getattr(self, "_sized", False):
            self._sized = True
            self._apply_sizes()

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        act = file.addAction("&Open…", self.open_dialog)
        act.setShortcut(QKeySequence.StandardKey.Open)
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file.addAction("&Close run", lambda: self.close_run(self.state.current)).setShortcut("Ctrl+W")
        file.addSeparator()
        file.addAction("&Quit", self.close).setShortcut(QKeySequence.StandardKey.Quit)
        exp = bar.addMenu("&Export")
        act = exp.addAction("Current view to PNG…", self.export_focused_png)
        act.setShortcut("Ctrl+E")
        for name, widget in self.exportable().items():
            exp.addAction(f"{name} to PNG…", lambda w=widget, n=name: self._export_png_dialog(w, n))
        exp.addSeparator()
        exp.addAction("Diagnosis report (Markdown)…", lambda: self._export_report_dialog("md"))
        exp.addAction("Diagnosis report (HTML)…", lambda: self._export_report_dialog("html"))
        view = bar.addMenu("&View")
        for dock in [self.findings_dock, self.metrics_dock, *self.view_docks]:
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction("Reset layout", self._apply_sizes)
        nav = bar.addMenu("&Navigate")
        self.actions_by_name = shortcuts.install(self, nav)
        nav.addSeparator()
        self.actions_by_name |= finder.install(self, nav)

    def _build_status(self) -> None:
        self.status_labels: dict[str, QLabel] = {}
        for key, stretch in (("file", 3), ("step", 1), ("layer", 1), ("live", 1)):
            label = QLabel("")
            self.status_labels[key] = label
            self.statusBar().addPermanentWidget(label, stretch)
        self._on_runs_changed()

    # ------------------------------------------------------------------ opening
    def open_dialog(self) -> None:
        start = str(self.settings.value("last_dir", os.getcwd()))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open traces", start, TRACE_FILTER)
        if paths:
            self.settings.setValue("last_dir", os.path.dirname(paths[0]))
            self.open_paths(paths)

    def open_paths(self, paths: list[str], background: bool = False) -> None:
        """Open each path in a worker; results arrive as ``loaded`` / ``failed``.

        ``background``: open as a new tab without leaving the run the user is reading
        (the demo's traces arriving one by one).
        """
        for path in paths:
            path = os.path.abspath(os.fspath(path))
            index = next((i for i, r in enumerate(self.state.runs)
                          if os.path.abspath(r.trace.path) == path), None)
            if index is not None:  # already open: show it rather than a second copy
                if not background:
                    self.state.set_current(index)
                continue
            if path in self.pending:
                continue
            self.pending.add(path)
            if background:
                self._background.add(path)
            self.statusBar().showMessage(f"Opening {path}…", 3000)
            self.loader.open(path)

    def add_run(self, run: Run, current: bool = True) -> int:
        """Show an already opened run (also for in-memory traces) and analyse it."""
        if run.trace.path and os.path.exists(run.trace.path):
            run.sidecar, message = sidecar.load(run.trace.path)
            if message:  # a corrupt or hostile sidecar is ignored, never fatal
                run.notes.append(message)
                self.statusBar().showMessage(message, 8000)
        index = self.state.add_run(run, current=current)
        self.live.watch(run)
        if run.report is None:
            self.loader.analyse(run)
        self.findings_dock.show()
        self.findings_dock.raise_()
        return index

    def _on_loaded(self, run: Run) -> None:
        path = run.trace.path
        self.pending.discard(path)
        self.add_recent(path)
        background = path in self._background
        self._background.discard(path)
        self.add_run(run, current=not background)

    def _on_failed(self, path: str, message: str) -> None:
        self.pending.discard(path)
        self.statusBar().showMessage(message, 8000)
        self.error_dialog(path, message)

    def _error_box(self, path: str, message: str) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, "Cannot open trace", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setInformativeText("The file was not opened; everything else keeps working.")
        box.open()
        return box

    def _on_analysed(self, run: Run, report: Report | None, extras: dict) -> None:
        index = next((i for i, r in enumerate(self.state.runs) if r is run), None)
        if index is None:
            return
        run.analysed = True
        if report is None:
            note = extras.get("error", "analysis failed")
            if note not in run.notes:
                run.notes.append(note)
        else:
            old = self.state.finding if self.state.run is run else None
            run.report = report
            if old is not None:  # live re-analysis: keep the same finding selected, cursor untouched
                same = next((f for f in report.findings if (f.code, f.layer) == (old.code, old.layer)), None)
                self.state.finding = same
                if same is not None and self.state.step_range == (old.steps[0], old.steps[1]):
                    self.state.set_range((same.steps[0], same.steps[1]))
        self.state.runUpdated.emit(index)
        if report is not None and id(run) not in self._auto_selected:
            self._auto_selected.add(id(run))
            top = [f for f in report.problems() if sidecar.finding_key(f) not in run.sidecar.suppressed]
            if not top:
                return
            if self.state.run is not run:  # shown when the user switches to it
                self._memory[id(run)] = (top[0].steps[0], top[0].layer or "", top[0], tuple(top[0].steps))
            elif self.state.finding is None:
                self.state.select_finding(top[0])

    def _on_series_ready(self, run: Run) -> None:
        """A big run's grad-norm lane arrived (after the first paint): the timeline re-plots."""
        if run is self.state.run:
            self.timeline.rebuild()

    def _on_events(self, run: Run, steps: np.ndarray) -> None:
        """Every NaN/Inf step of the run (found after the analysis): ticks on the overview."""
        series = getattr(run, "series", None)
        if series is not None:
            series.events["nonfinite_all"] = np.asarray(steps)
            if run is self.state.run:
                self.timeline.refresh_events()

    # ------------------------------------------------------------------ runs
    def _on_run_replaced(self, old: Run, new: Run) -> None:
        """The live follower reopened a file as a new Run object: it is the same run to the user."""
        if id(old) in self._auto_selected:
            self._auto_selected.add(id(new))
        if id(old) in self._memory:
            self._memory[id(new)] = self._memory.pop(id(old))
        if self._shown_run is old:
            self._shown_run = new
        new.sidecar = old.sidecar
        for view in (self.timeline, *self.views.values()):
            if hasattr(view, "replace_run"):
                view.replace_run(old, new)
        self._last_rows[id(new)] = self._last_rows.pop(id(old), new.trace.n_steps)

    def _on_run_grew(self, index: int) -> None:
        """New rows: the status bar counts them; with Follow on, a cursor on the last row stays on it."""
        if index != self.state.current or self.state.run is None:
            return
        run = self.state.run
        n, before = run.trace.n_steps, self._last_rows.get(id(run))
        self._last_rows[id(run)] = n
        if (before is not None and n > before and self.timeline.follow and self.live.is_live(run)
                and self.state.step == int(run.steps[before - 1])):
            self.state.last()
        self._on_step(self.state.step)

    def _switch_selection(self) -> None:
        """Each run keeps its own cursor, layer, finding and range across tab switches."""
        run, old = self.state.run, self._shown_run
        if run is old:
            return
        s = self.state
        if old is not None and any(r is old for r in s.runs):
            self._memory[id(old)] = (s.step, s.layer, s.finding, s.step_range)
        self._shown_run = run
        step, layer, finding, step_range = self._memory.get(id(run), (s.step, s.layer, None, None))
        s.select_finding(finding)
        s.set_range(step_range)
        s.set_layer(layer)
        s.set_step(step)

    def close_run(self, index: int) -> None:
        if 0 <= index < len(self.state.runs):
            self.state.select_finding(None)
            self.state.set_range(None)
            self.state.close_run(index)

    def _on_runs_changed(self) -> None:
        self._switch_selection()
        self.tabs.blockSignals(True)
        while self.tabs.count():
            self.tabs.removeTab(0)
        for run in self.state.runs:
            i = self.tabs.addTab(run.name or os.path.basename(run.trace.path))
            self.tabs.setTabToolTip(i, run.trace.path)
        self.tabs.setCurrentIndex(self.state.current)
        self.tabs.setVisible(len(self.state.runs) > 0)
        self.tabs.blockSignals(False)
        run = self.state.run
        self.setWindowTitle(f"Trainwreck — {run.name}" if run is not None else "Trainwreck")
        if run is None:
            self.status_labels["file"].setText("no trace open")
        else:
            ranks = f" (rank {run.trace.rank_index}/{run.trace.n_ranks})" if run.trace.n_ranks > 1 else ""
            self.status_labels["file"].setText(f"{run.trace.path}{ranks}")
        self._on_step(self.state.step)
        self._on_layer(self.state.layer)
        self._on_live_status(run, self.live.status(run))

    def _on_step(self, step: int) -> None:
        run = self.state.run
        if run is None:
            self.status_labels["step"].setText("")
            return
        steps = run.steps
        row = int(np.searchsorted(steps, step, side="left"))
        self.status_labels["step"].setText(f"step {step:,}  (row {row + 1:,}/{len(steps):,})")

    def _on_layer(self, layer: str) -> None:
        self.status_labels["layer"].setText(f"layer {layer}" if layer else "no layer selected")

    def _on_live_status(self, run: Run | None, text: str) -> None:
        if run is not self.state.run:
            return
        live = self.live.is_live(run)
        self.status_labels["live"].setText(text if text else ("" if run is None else "complete"))
        self.findings.set_live_note(text if text and (live or "closed cleanly" not in text) else None)

    def save_sidecar(self) -> None:
        """Write the current run's bookmarks, notes, suppressed findings and limits beside its trace."""
        run = self.state.run
        if run is not None and run.trace.path and os.path.exists(run.trace.path):
            message = sidecar.save(run.trace.path, run.sidecar)
            if message:
                self.statusBar().showMessage(message, 8000)

    def go_last(self) -> None:
        self.state.last()
        if self.live.is_live(self.state.run):
            self.timeline.follow = True

    def clear_selection(self) -> None:
        self.state.select_finding(None)
        self.state.set_range(None)

    def select_finding(self, finding: Finding) -> None:
        self.state.select_finding(finding)

    # ------------------------------------------------------------------ threads
    def _pools(self) -> list[QThreadPool]:
        """Every worker pool of the window (the views are built once: looked up once, not per call;
        a walk over the whole widget tree costs ~2 ms, more than a cursor step may)."""
        pools = getattr(self, "_pool_cache", None)
        if not pools:
            pools = self._pool_cache = self.findChildren(QThreadPool)
        return pools

    def workers_idle(self) -> bool:
        """No worker of any view (or the loader) is running."""
        return all(p.activeThreadCount() == 0 for p in self._pools())

    def wait_workers(self, msecs: int = 30000) -> None:
        """Block until every worker pool in the window is idle, then deliver queued results."""
        for pool in self._pools():
            pool.waitForDone(msecs)
        QApplication.processEvents()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        self.live.stop()
        self.player.timer.stop()
        self.wait_workers(10000)
        for run in list(self.state.runs):
            run.trace.close()
        super().closeEvent(event)


__all__ = ["MainWindow", "make_view"]
