"""Application start: ``run_app(paths)`` shows the main window and opens the traces.

``main.py`` calls ``run_app(paths)``. A caller that still has to *produce* traces
(the demo) passes ``demo_progress``: a function that takes a ``progress(done, total,
label)`` callback and returns or yields trace paths. It runs in a worker thread while
the window is already up; progress shows in the status bar and each yielded path opens
as soon as it exists.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QApplication, QProgressBar

from gui import theme
from gui.main_window import MainWindow

Progress = Callable[[int, int, str], None]
DemoFn = Callable[[Progress], Iterable[str]]


def make_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), themed; pyqtgraph's only global option is set here."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setApplicationName("Trainwreck")
        app.setOrganizationName("Trainwreck")
        pg.setConfigOptions(antialias=True)
    theme.apply_theme(app)  # type: ignore[arg-type]
    return app  # type: ignore[return-value]


class _PendingSignals(QObject):
    progress = Signal(int, int, str)
    path = Signal(str)
    finished = Signal(str)  # "" or an error line


class _PendingJob(QRunnable):
    def __init__(self, fn: DemoFn, signals: _PendingSignals) -> None:
        super().__init__()
        self.fn, self.signals = fn, signals

    def run(self) -> None:
        error = ""
        try:
            for path in self.fn(self.signals.progress.emit) or ():
                self.signals.path.emit(str(path))
        except Exception as exc:  # noqa: BLE001 - shown in the status bar, the app stays up
            error = f"demo failed: {type(exc).__name__}: {exc}".splitlines()[0]
        self.signals.finished.emit(error)


class PendingPaths(QObject):
    """Runs a path-producing function in a worker, reporting progress into the window's status bar."""

    def __init__(self, window: MainWindow, fn: DemoFn) -> None:
        super().__init__(window)
        self.window = window
        self.pool = QThreadPool(self)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(260)
        self.bar.setFormat("%v/%m %p%")
        window.statusBar().addWidget(self.bar)
        self.signals = _PendingSignals(self)
        self.signals.progress.connect(self._on_progress)
        self.signals.path.connect(self._on_path)
        self.signals.finished.connect(self._on_finished)
        self.done = False
        self.pool.start(_PendingJob(fn, self.signals))

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, label: str) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.window.statusBar().showMessage(label, 10000)

    @Slot(str)
    def _on_path(self, path: str) -> None:
        self.window.open_paths([path], background=True)  # the first one is shown; the user reads on

    @Slot(str)
    def _on_finished(self, error: str) -> None:
        self.done = True
        self.bar.hide()
        self.window.statusBar().showMessage(error or "all demo traces written", 8000)


def run_app(paths: list[str], demo_progress: DemoFn | None = None) -> int:
    """Show the app with ``paths`` open (and, optionally, paths still being produced); returns exit code."""
    app = make_app()
    window = MainWindow()
    window.show()
    if paths:
        window.open_paths(list(paths))
    if demo_progress is not None:
        window.pending_job = PendingPaths(window, demo_progress)  # type: ignore[attr-defined]
    return int(app.exec())
