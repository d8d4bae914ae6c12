"""Colours and the application style: one dark theme shared by Qt widgets and pyqtgraph plots."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

BACKGROUND = "#16181d"
PANEL = "#1e2128"
PANEL_ALT = "#262a33"
BORDER = "#343a46"
TEXT = "#d7dae0"
TEXT_DIM = "#8b92a1"
ACCENT = "#4c9aff"
CURSOR = "#f2f2f2"

SEVERITY = {"error": "#f0524f", "warning": "#e7a83e", "info": "#5aa6ef"}
NAN_COLOR = "#e056fd"  # NaN markers everywhere (outside every colormap)
INF_COLOR = "#ff8c1a"  # ±Inf markers
SERIES = ("#4cc9f0", "#f2c14e", "#90e39a", "#c792ea", "#f78c6b", "#82aaff", "#ff6b9a", "#b8e986")
COMPARE = "#ff9f5a"

_QSS = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QDockWidget {{ color: {TEXT}; titlebar-close-icon: none; }}
QDockWidget::title {{ background: {PANEL_ALT}; padding: 3px 6px; border-bottom: 1px solid {BORDER}; }}
QToolTip {{ color: {TEXT}; background: {PANEL_ALT}; border: 1px solid {BORDER}; }}
QStatusBar {{ background: {PANEL}; color: {TEXT_DIM}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ padding: 0 8px; }}
QTabBar::tab {{ background: {PANEL}; color: {TEXT_DIM}; padding: 4px 12px; border: 1px solid {BORDER};
               border-bottom: none; margin-right: 2px; }}
QTabBar::tab:selected {{ background: {PANEL_ALT}; color: {TEXT}; border-top: 2px solid {ACCENT}; }}
QListWidget {{ background: {PANEL}; border: none; outline: none; }}
QListWidget::item {{ border-bottom: 1px solid {BORDER}; }}
QListWidget::item:selected {{ background: #2b3647; border-left: 3px solid {ACCENT}; }}
QListWidget::item:hover:!selected {{ background: #232833; }}
QLabel#banner {{ background: #3a2326; color: #ffd7d5; border: 1px solid #6b3236; border-radius: 4px;
                font-weight: 600; }}
QLabel#bannerOk {{ background: #1f3326; color: #c9f2d3; border: 1px solid #2f5a3a; border-radius: 4px; }}
QLabel#notes {{ background: #2c2a1f; color: #e9dfb0; border: 1px solid #5a5230; border-radius: 4px; }}
QLabel#liveBanner {{ background: #3a3020; color: #ffe2a8; border: 1px solid #6b5a30; border-radius: 4px; }}
QLabel#muted {{ color: {TEXT_DIM}; }}
QCheckBox, QLabel {{ color: {TEXT}; }}
QToolButton {{ color: {TEXT}; padding: 2px 6px; }}
"""


def palette() -> QPalette:
    """A dark palette for the Fusion style."""
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: PANEL, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BACKGROUND, QPalette.ColorRole.AlternateBase: PANEL_ALT,
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: PANEL_ALT,
        QPalette.ColorRole.ButtonText: TEXT, QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: PANEL_ALT,
        QPalette.ColorRole.ToolTipText: TEXT, QPalette.ColorRole.PlaceholderText: TEXT_DIM,
        QPalette.ColorRole.Link: ACCENT, QPalette.ColorRole.BrightText: "#ffffff",
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(TEXT_DIM))
    return pal


def apply_theme(app: QApplication) -> None:
    """Fusion style, dark palette and the style sheet (idempotent)."""
    app.setStyle("Fusion")
    app.setPalette(palette())
    font = QFont(app.font())
    if font.pointSizeF() < 9:
        font.setPointSizeF(9)
        app.setFont(font)
    app.setStyleSheet(_QSS)


def severity_color(severity: str) -> str:
    return SEVERITY.get(severity, TEXT_DIM)


def series_color(i: int) -> str:
    return SERIES[i % len(SERIES)]
