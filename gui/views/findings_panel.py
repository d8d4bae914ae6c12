"""Root-cause panel: the ranked findings of the current run, shown first on open.

Each finding is a card (severity, code, title, steps, layer, evidence, fix). Clicking
one, Enter, or N / Shift+N calls ``state.select_finding`` so every view jumps to its
evidence. A banner names the first bad step; the report's notes (crashed run, data a
detector needed but the trace lacks) stay visible under the list.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from analysis.findings import Finding, Report
from gui import theme
from gui.state import RunState

FILTERS = {"All findings": None, "Causes": "cause", "Symptoms": "symptom", "Errors and warnings": "problems"}


def _esc(text: object) -> str:
    return html.escape(str(text))


def card_html(f: Finding, rank: int) -> str:
    """The rich-text card of one finding."""
    sev = theme.severity_color(f.severity)
    steps = f"step {f.steps[0]:,}" if f.steps[0] == f.steps[1] else f"steps {f.steps[0]:,}–{f.steps[1]:,}"
    where = steps + (f" · layer <b>{_esc(f.layer)}</b>" if f.layer else "")
    related = ""
    if f.related:
        word = "explains" if f.kind == "cause" else "explained by"
        related = f"<div style='color:{theme.TEXT_DIM}'>{word}: {_esc(', '.join(f.related))}</div>"
    return (
        f"<div><span style='background-color:{sev}; color:#101216; font-weight:700'>"
        f"&nbsp;{f.severity.upper()}&nbsp;</span>&nbsp; <b style='font-size:11pt'>{_esc(f.code)}</b>"
        f"&nbsp; <span style='color:{theme.TEXT_DIM}'>#{rank} · {f.kind} · {f.confidence:.0%}</span></div>"
        f"<div style='margin-top:3px; font-weight:600'>{_esc(f.title)}</div>"
        f"<div style='color:{theme.TEXT_DIM}; margin-top:2px'>{where}</div>"
        f"<div style='margin-top:3px'>{_esc(f.evidence)}</div>"
        f"<div style='margin-top:3px'><span style='color:#90e39a; font-weight:600'>Fix:</span> "
        f"{_esc(f.fix)}</div>{related}"
    )


def first_bad(report: Report) -> tuple[Finding, Finding | None] | None:
    """The top-ranked finding (warnings/errors first) and the first symptom seen at or after it.

    Ranking already puts the cause whose evidence came first and explains the rest on top,
    so a background property the run trained well with (onset 0) does not win the banner
    over the cause of a late failure."""
    pool = report.problems() or report.findings
    if not pool:
        return None
    first = pool[0]
    symptoms = [f for f in pool if f.kind == "symptom" and f.steps[0] >= first.steps[0] and f is not first]
    visible = min(symptoms, key=lambda f: f.steps[0]) if symptoms else None
    return first, visible


def group_notes(notes: list[str]) -> list[str]:
    """Crash/live warnings first, then 'needs X' notes merged by what is missing."""
    head, needs, other = [], {}, []
    for note in notes:
        code, sep, rest = note.partition(": ")
        if sep and rest.startswith("needs "):
            needs.setdefault(rest, []).append(code)
        elif "clean close" in note or "being written" in note:
            head.append(note)
        else:
            other.append(note)
    merged = [f"{rest} ({', '.join(codes)})" for rest, codes in needs.items()]
    return head + other + merged


class _Card(QLabel):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setContentsMargins(8, 6, 8, 8)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)


class FindingsPanel(QWidget):
    """Ranked findings list bound to ``state.finding``; ``next_finding(±1)`` walks them in step order."""

    def __init__(self, state: RunState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.findings: list[Finding] = []
        self._syncing = False
        self.show_suppressed = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.linkActivated.connect(self._on_banner_link)
        self.live = QLabel()
        self.live.setObjectName("liveBanner")
        self.live.setWordWrap(True)
        self.live.hide()
        row = QHBoxLayout()
        self.status = QLabel("Open a trace: File › Open (Ctrl+O) or drop .h5 files here")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.filter = QComboBox()
        self.filter.addItems(list(FILTERS))
        self.filter.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.filter.currentIndexChanged.connect(lambda _i: self.refresh())
        row.addWidget(self.status, 1)
        row.addWidget(self.filter)
        self.list = QListWidget()
        self.list.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemClicked.connect(self._on_item)
        self.list.itemActivated.connect(self._on_item)
        self.list.currentItemChanged.connect(lambda cur, _prev: self._on_item(cur))
        self.list.viewport().installEventFilter(self)  # cards follow the viewport width (scroll bar)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.notes = QLabel()
        self.notes.setObjectName("notes")
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.RichText)
        self.notes.hide()
        for w in (self.banner, self.live, self.notes):
            w.setContentsMargins(8, 5, 8, 5)  # padding here, not in the style sheet, or wrapped text clips
        for w in (self.banner, self.live):
            lay.addWidget(w)
        lay.addLayout(row)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.notes)
        state.runsChanged.connect(self.refresh)
        state.runUpdated.connect(self._on_run_updated)
        state.findingChanged.connect(self._on_finding)
        state.annotationsChanged.connect(self.refresh)
        self.refresh()

    # ------------------------------------------------------------------ content
    def _on_run_updated(self, index: int) -> None:
        if index == self.state.current:
            self.refresh()

    def refresh(self) -> None:
        """Rebuild banner, cards and notes from the current run's report."""
        run = self.state.run
        report = run.report if run is not None else None
        self._syncing = True
        try:
            self.list.clear()
            self.findings = []
            if run is None:
                self.status.setText("Open a trace: File › Open (Ctrl+O) or drop .h5 files here")
            elif report is None:
                failed = [n for n in run.notes if n.startswith("analysis failed")]
                self.status.setText(failed[0] if failed else "Analysing… (findings follow)")
            else:
                self._fill(report)
            self._set_banner(report)
            self._set_notes(run.notes + report.notes if run is not None and report is not None
                            else (run.notes if run is not None else []))
            self._on_finding(self.state.finding)
        finally:
            self._syncing = False

    def _fill(self, report: Report) -> None:
        mode = FILTERS[self.filter.currentText()]
        shown = [f for f in report.findings if mode is None
                 or (mode == "problems" and f.severity != "info") or f.kind == mode]
        hidden = [f for f in shown if self.state.is_suppressed(f)]
        if not self.show_suppressed:
            shown = [f for f in shown if not self.state.is_suppressed(f)]
        n_prob = len(report.problems())
        self.status.setText(f"{len(report.findings)} finding(s), {n_prob} warning/error · "
                            f"{report.steps:,} steps" + (f" · showing {len(shown)}" if len(shown) !=
                                                         len(report.findings) else "")
                            + (f" · {len(hidden)} marked expected" if hidden else ""))
        for f in shown:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, report.findings.index(f))
            self.list.addItem(item)
            text = card_html(f, report.findings.index(f) + 1)
            if self.state.is_suppressed(f):
                text = f"<i>(marked expected)</i> {text}"
            card = _Card(text)
            self.list.setItemWidget(item, card)
            self.findings.append(f)
        self._resize_cards()

    def _context_menu(self, pos: object) -> None:
        item = self.list.itemAt(pos)
        run = self.state.run
        menu = QMenu(self)
        if item is not None and run is not None and run.report is not None:
            f = run.report.findings[int(item.data(Qt.ItemDataRole.UserRole))]
            on = self.state.is_suppressed(f)
            menu.addAction("Show again (not expected)" if on else "Mark as expected (hide)",
                           lambda: self.state.set_suppressed(f, not on))
        act = menu.addAction("Show findings marked expected", self.toggle_show_suppressed)
        act.setCheckable(True)
        act.setChecked(self.show_suppressed)
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def toggle_show_suppressed(self) -> None:
        self.show_suppressed = not self.show_suppressed
        self.refresh()

    def _resize_cards(self) -> None:
        width = max(self.list.viewport().width(), 200)
        for i in range(self.list.count()):
            item = self.list.item(i)
            card = self.list.itemWidget(item)
            if card is not None:
                item.setSizeHint(QSize(width, card.heightForWidth(width) + 2))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.list.viewport() and event.type() == QEvent.Type.Resize:
            self._resize_cards()
        return super().eventFilter(obj, event)

    def _set_banner(self, report: Report | None) -> None:
        found = first_bad(report) if report is not None else None
        if report is None:
            self.banner.hide()
            return
        self.banner.show()
        if found is None:
            self.banner.setObjectName("bannerOk")
            self.banner.setText("No problem found: this run looks healthy to every detector that could run.")
        else:
            first, visible = found
            text = (f"First bad step: <a href='step:{first.steps[0]}' style='color:#ffffff'>"
                    f"{first.steps[0]:,}</a> — {_esc(first.code)}")
            if visible is not None and visible.steps[0] > first.steps[0]:
                gap = visible.steps[0] - first.steps[0]
                text += (f"; {_esc(visible.code)} visible at step {visible.steps[0]:,} "
                         f"({gap:,} steps later)")
            self.banner.setObjectName("banner" if first.severity != "info" else "bannerOk")
            self.banner.setText(text)
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)

    def _set_notes(self, notes: list[str]) -> None:
        grouped = group_notes(notes)
        if not grouped:
            self.notes.hide()
            return
        items = "".join(f"<li>{_esc(n)}</li>" for n in grouped)
        self.notes.setText(f"<b>Notes</b><ul style='margin:0; -qt-list-indent:1'>{items}</ul>")
        self.notes.show()

    def set_live_note(self, text: str | None) -> None:
        """A banner for live state ('live: step N', 'run ended without a clean close…')."""
        self.live.setText(text or "")
        self.live.setVisible(bool(text))

    # ------------------------------------------------------------------ selection
    def _on_banner_link(self, link: str) -> None:
        if link.startswith("step:"):
            report = self.state.run.report if self.state.run is not None else None
            found = first_bad(report) if report is not None else None
            if found is not None:
                self.state.select_finding(found[0])

    def _on_item(self, item: QListWidgetItem | None) -> None:
        if self._syncing or item is None:
            return
        run = self.state.run
        if run is None or run.report is None:
            return
        self.state.select_finding(run.report.findings[int(item.data(Qt.ItemDataRole.UserRole))])

    def _on_finding(self, finding: Finding | None) -> None:
        row = next((i for i, f in enumerate(self.findings) if f is finding), -1)
        was, self._syncing = self._syncing, True
        try:
            self.list.setCurrentRow(row)
            if row >= 0:
                self.list.scrollToItem(self.list.item(row))
        finally:
            self._syncing = was

    def activate_current(self) -> None:
        """Enter: jump to the highlighted finding (the first one if none)."""
        row = max(self.list.currentRow(), 0)
        if self.findings:
            self.state.select_finding(self.findings[min(row, len(self.findings) - 1)])

    def next_finding(self, delta: int = 1) -> None:
        """Select the next (delta > 0) or previous finding in step order, wrapping around."""
        if not self.findings:
            return
        order = sorted(self.findings, key=lambda f: (f.steps[0], self.findings.index(f)))
        cur = self.state.finding
        if cur in order:
            i = (next(i for i, f in enumerate(order) if f is cur) + delta) % len(order)
        else:
            i = 0 if delta > 0 else len(order) - 1
        self.state.select_finding(order[i])
