"""The window's file-facing parts: recent files, drag and drop, export dialogs, the key map dialog.

A mixin of ``MainWindow`` (kept apart so each module stays small); it relies on the
window's ``settings``, ``state``, ``timeline``, ``findings``, ``views`` and ``open_paths``.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget

from gui import export, shortcuts

TRACE_EXTS = (".h5", ".hdf5")
MAX_RECENT = 10
OTHER_VIEWS = (("heatmap_view", "HeatmapView", "Layer × step heatmap"),
               ("layer_view", "LayerView", "Layer detail"),
               ("histogram_view", "HistogramView", "Histograms"),
               ("outputs_view", "OutputsView", "Outputs vs targets"))


class WindowIO:
    """Recent files (QSettings), .h5 drops, PNG/report export dialogs, the '?' dialog."""

    # ------------------------------------------------------------------ recent files
    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent() if p != path]
        self.settings.setValue("recent", items[:MAX_RECENT])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent():
            self.recent_menu.addAction(path, lambda p=path: self.open_paths([p]))
        if not self.recent():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if any(u.toLocalFile().lower().endswith(TRACE_EXTS) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls()
                 if u.toLocalFile().lower().endswith(TRACE_EXTS)]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ------------------------------------------------------------------ export
    def report_views(self) -> dict[str, QWidget]:
        """The views whose pictures go into a diagnosis report, by file-name key."""
        out: dict[str, QWidget] = {"timeline": self.timeline}
        for module, _cls, _title in OTHER_VIEWS:
            out[module.removesuffix("_view")] = self.views[module]
        return out

    def exportable(self) -> dict[str, QWidget]:
        out: dict[str, QWidget] = {"Timeline": self.timeline, "Root cause": self.findings}
        for (module, _cls, title) in OTHER_VIEWS:
            out[title] = self.views[module]
        out["Whole window"] = self
        return out

    def export_focused_png(self) -> None:
        focus = QApplication.focusWidget()
        target: QWidget = self.timeline
        for widget in self.exportable().values():
            if focus is not None and widget is not self and (focus is widget or widget.isAncestorOf(focus)):
                target = widget
        self._export_png_dialog(target, "view")

    def _beside_trace(self, filename: str) -> str:
        """``filename`` in the current trace's folder (the working directory when no run is open)."""
        run = self.state.run
        folder = os.path.dirname(os.path.abspath(run.trace.path)) if run is not None and \
            os.path.isfile(run.trace.path) else os.getcwd()
        return os.path.join(folder, filename)

    def _export_png_dialog(self, widget: QWidget, name: str) -> None:
        default = self._beside_trace(f"{name.lower().replace(' ', '-')}.png")
        path, _ = QFileDialog.getSaveFileName(self, f"Export {name} to PNG", default, "PNG images (*.png)")
        if path:
            export.save_png(widget, path)
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def _export_report_dialog(self, fmt: str) -> None:
        run = self.state.run
        if run is None:
            return
        default = export.report_path(run.trace.path, fmt) if os.path.isfile(run.trace.path) else \
            self._beside_trace(f"{run.name}-diagnosis.{fmt}")
        path, _ = QFileDialog.getSaveFileName(self, "Export diagnosis", default,
                                              "Markdown (*.md)" if fmt == "md" else "HTML (*.html)")
        if path:
            export.write_report(self, path)
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def show_keys(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts",
                          shortcuts.key_table(self.actions_by_name), QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
