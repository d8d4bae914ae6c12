"""Export: any view to PNG, and the diagnosis as a Markdown or HTML report with evidence figures.

The figures are the app's own plots rendered at 2× (``gui.figures``) at each finding's
first bad step (the cursor, layer and range that a click on the finding gives), and only
the views that show that finding's evidence (``analysis.evidence``), so the report shows
what the screen shows. ``report_path(trace)`` is where a report goes by default: beside it.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from PySide6.QtWidgets import QApplication, QWidget

from analysis.evidence import evidence_views
from analysis.findings import Finding, Report
from gui.figures import render_view, view_caption
from gui.state import Run, RunState
from gui.views.findings_panel import first_bad, group_notes


class ReportSource(Protocol):
    """What ``write_report`` needs from the window."""

    state: RunState

    def report_views(self) -> dict[str, QWidget]: ...

    def wait_workers(self, msecs: int = ...) -> None: ...


def save_png(widget: QWidget, path: str) -> str:
    """Grab ``widget`` as it is on screen and save it as PNG; returns the path."""
    QApplication.processEvents()
    pix = widget.grab()
    if pix.isNull() or not pix.save(path, "PNG"):
        raise OSError(f"could not write {path}")
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "x"


Shot = tuple[str, str, str]  # (view name, png path, caption)


def report_path(trace_path: str, fmt: str = "html") -> str:
    """The default report file: ``<trace stem>-diagnosis.<fmt>`` in the trace's folder."""
    stem = os.path.splitext(os.path.basename(trace_path))[0]
    stem = re.sub(r"\.rank\d+$", "", stem)
    return os.path.join(os.path.dirname(os.path.abspath(trace_path)), f"{stem}-diagnosis.{fmt}")


def capture_evidence(src: ReportSource, folder: str, findings: list[Finding],
                     settle: Callable[[], None] | None = None, scale: float = 2.0) -> dict[int, list[Shot]]:
    """For each finding: select it, let the views update, render the views that show its evidence.

    Returns ``{finding index: [(view name, png path, caption)]}``; the cursor, layer, range
    and selected finding are restored afterwards.
    """
    state = src.state
    saved = (state.step, state.layer, state.finding, state.step_range)
    settle = settle or (lambda: src.wait_workers(10000))
    os.makedirs(folder, exist_ok=True)
    views = src.report_views()
    out: dict[int, list[Shot]] = {}
    try:
        for i, f in enumerate(findings):
            state.select_finding(f)
            settle()
            settle()
            shots = []
            for name in evidence_views(f):
                show = getattr(src, "show_view", None)
                if callable(show):  # a view behind a dock tab comes to the front for its picture
                    show(name)
                    QApplication.processEvents()
                view = views.get(name)
                if view is None or not view.isVisible():
                    continue
                target = os.path.join(folder, f"{i + 1:02d}-{_slug(f.code)}-{name}.png")
                path = render_view(view, target, scale)
                if path is not None:
                    shots.append((name, path, view_caption(view)))
            out[i] = shots
    finally:
        step, layer, finding, step_range = saved
        state.select_finding(finding)
        state.set_range(step_range)
        state.set_layer(layer)
        state.set_step(step)
    return out


def _where(f: Finding) -> str:
    steps = f"{f.steps[0]}" if f.steps[0] == f.steps[1] else f"{f.steps[0]}–{f.steps[1]}"
    return steps


def markdown(run: Run, report: Report, shots: dict[int, list[Shot]], base: str) -> str:
    """The report as Markdown; image links relative to ``base`` (the report's folder)."""
    lines = [f"# Trainwreck diagnosis: {run.name}", "",
             f"- trace: `{run.trace.path}`", f"- steps: {report.steps}",
             f"- findings: {len(report.findings)} ({len(report.problems())} warning/error)",
             f"- written: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", ""]
    found = first_bad(report)
    if found is not None:
        first, visible = found
        text = f"**First bad step: {first.steps[0]}** ({first.code})"
        if visible is not None and visible.steps[0] > first.steps[0]:
            text += f"; {visible.code} visible at step {visible.steps[0]} " \
                    f"({visible.steps[0] - first.steps[0]} steps later)"
        lines += [text, ""]
    else:
        lines += ["No problem found.", ""]
    if report.findings:
        lines += ["| # | severity | code | kind | confidence | steps | layer |",
                  "|---|---|---|---|---|---|---|"]
        for i, f in enumerate(report.findings, 1):
            lines.append(f"| {i} | {f.severity} | `{f.code}` | {f.kind} | {f.confidence:.2f} | "
                         f"{_where(f)} | {f.layer or '–'} |")
        lines.append("")
    for i, f in enumerate(report.findings):
        lines += [f"## {i + 1}. {f.code}: {f.title}", "",
                  f"*{f.severity}, {f.kind}, confidence {f.confidence:.2f}, steps {_where(f)}"
                  + (f", layer `{f.layer}`" if f.layer else "") + "*", "",
                  f"**Evidence.** {f.evidence}", "", f"**Fix.** {f.fix}", ""]
        if f.related:
            lines += [f"Related: {', '.join(f.related)}", ""]
        for name, path, caption in shots.get(i, []):
            lines += [f"![{f.code} — {name} at step {f.steps[0]}]({os.path.relpath(path, base)})", ""]
            if caption:
                lines += [f"*{name} at step {f.steps[0]}: {caption}*", ""]
    notes = group_notes(run.notes + report.notes)
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1d2129;
line-height:1.45}
table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:3px 8px}th{background:#eef}
.sev{color:#fff;padding:1px 6px;border-radius:3px;font-weight:600}.error{background:#d43c3a}
.warning{background:#c88a1c}.info{background:#3d86cf}
img{max-width:100%;height:auto;border:1px solid #ccd;margin:4px 0}
.banner{background:#fde8e7;border:1px solid #e7a6a3;padding:8px;border-radius:4px}code{background:#f2f2f6}"""


def _img(path: str, scale: float = 2.0) -> str:
    """The PNG embedded, shown at its logical size (a 2× figure at half its pixel width)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    width = int.from_bytes(raw[16:20], "big") if raw[:8] == b"\x89PNG\r\n\x1a\n" else 0
    size = f" width='{int(width / scale)}'" if width else ""
    data = base64.b64encode(raw).decode("ascii")
    return f"<img alt='{html.escape(os.path.basename(path))}'{size} src='data:image/png;base64,{data}'>"


def html_report(run: Run, report: Report, shots: dict[int, list[Shot]]) -> str:
    """The report as one self-contained HTML page (figures embedded)."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Trainwreck diagnosis: "
             f"{e(run.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Trainwreck diagnosis: {e(run.name)}</h1>",
             f"<p>trace <code>{e(run.trace.path)}</code> · {report.steps} steps · "
             f"{len(report.findings)} findings ({len(report.problems())} warning/error)</p>"]
    found = first_bad(report)
    if found is not None:
        first, visible = found
        extra = ""
        if visible is not None and visible.steps[0] > first.steps[0]:
            extra = f"; {e(visible.code)} visible at step {visible.steps[0]}"
        parts.append(f"<p class='banner'><b>First bad step: {first.steps[0]}</b> "
                     f"({e(first.code)}){extra}</p>")
    else:
        parts.append("<p>No problem found.</p>")
    if report.findings:
        rows = "".join(
            f"<tr><td>{i}</td><td><span class='sev {f.severity}'>{f.severity}</span></td>"
            f"<td><code>{e(f.code)}</code></td><td>{f.kind}</td><td>{f.confidence:.2f}</td>"
            f"<td>{_where(f)}</td><td>{e(f.layer or '–')}</td></tr>"
            for i, f in enumerate(report.findings, 1))
        parts.append("<table><tr><th>#</th><th>severity</th><th>code</th><th>kind</th><th>confidence</th>"
                     f"<th>steps</th><th>layer</th></tr>{rows}</table>")
    for i, f in enumerate(report.findings):
        parts.append(f"<h2>{i + 1}. <code>{e(f.code)}</code>: {e(f.title)}</h2>"
                     f"<p><span class='sev {f.severity}'>{f.severity}</span> {f.kind}, confidence "
                     f"{f.confidence:.2f}, steps {_where(f)}" + (f", layer <code>{e(f.layer)}</code>"
                                                                 if f.layer else "") + "</p>"
                     f"<p><b>Evidence.</b> {e(f.evidence)}</p><p><b>Fix.</b> {e(f.fix)}</p>")
        if f.related:
            parts.append(f"<p>Related: {e(', '.join(f.related))}</p>")
        parts += [f"<figure>{_img(p)}<figcaption>{e(name)} at step {f.steps[0]}"
                  + (f": {e(caption)}" if caption else "") + "</figcaption></figure>"
                  for name, p, caption in shots.get(i, [])]
    notes = group_notes(run.notes + report.notes)
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(src: ReportSource, path: str, fmt: str | None = None) -> str:
    """Write the current run's diagnosis to ``path`` (``.md`` or ``.html``) with its figures.

    Figures go to ``<path stem>_files/``; the HTML also embeds them so the page stands alone.
    """
    run = src.state.run
    if run is None or run.report is None:
        raise ValueError("no analysed run to report on")
    fmt = fmt or ("html" if path.lower().endswith((".html", ".htm")) else "md")
    folder = os.path.splitext(path)[0] + "_files"
    shots = capture_evidence(src, folder, run.report.findings)
    text = html_report(run, run.report, shots) if fmt == "html" else \
        markdown(run, run.report, shots, os.path.dirname(os.path.abspath(path)))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
