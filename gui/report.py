"""The diagnosis report without a display: ``write_headless(trace, out, report)``.

Used by ``trainwreck report TRACE -o REPORT.html``. Qt is put on its offscreen platform
before the ``QApplication`` exists, the app's own window is built at 1600×1000 (never
shown on a screen), the trace is opened through the same loader as in the app, and the
report is written by ``gui.export`` with figures rendered from the plots at 2×.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from analysis.errors import TraceError
from analysis.findings import Report

SIZE = (1600, 1000)


class ReportFailed(TraceError):
    """The trace could not be shown for the report (one line, like every trace error)."""


def _quiet(mode, context, message: str) -> None:  # noqa: ANN001 - Qt message handler signature
    """Drop the offscreen platform's chatter; anything else still goes to stderr."""
    if "propagateSizeHints" not in message:
        sys.stderr.write(message + "\n")


def _use_offscreen() -> None:
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        qInstallMessageHandler(_quiet)


def _wait(win, timeout: float) -> None:  # noqa: ANN001 - a MainWindow
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while True:
        QApplication.processEvents()
        win.wait_workers(50)
        run = win.state.run
        if run is not None and run.report is not None and not win.loader.busy():
            return
        if win.failed_message:
            raise ReportFailed(win.failed_message)
        if time.monotonic() > end:
            raise ReportFailed(f"timed out after {timeout:.0f} s while opening the trace")
        time.sleep(0.01)


def write_headless(trace_path: str, out: str, report: Report, timeout: float = 300.0) -> str:
    """Write ``out`` (``.html`` or ``.md``) for ``trace_path`` with an already computed ``report``."""
    _use_offscreen()
    from PySide6.QtCore import QSettings

    from gui import export
    from gui.app import make_app
    from gui.main_window import MainWindow

    make_app([sys.argv[0] if sys.argv else "trainwreck"])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat)
        messages: list[str] = []
        win = MainWindow(settings=settings, analyze_fn=lambda _trace: report,
                         error_dialog=lambda _path, message: messages.append(message))
        win.failed_message = ""
        win.loader.failed.connect(lambda _p, m: setattr(win, "failed_message", m))
        win.resize(*SIZE)
        win.show()
        try:
            win.open_paths([trace_path])
            _wait(win, timeout)
            win.wait_workers(30000)
            return export.write_report(win, out)
        finally:
            win.close()
