"""Export: any view to PNG, and the diagnosis as a Markdown or HTML report with evidence figures.

The figures are the app's own views grabbed at each finding's first bad step (the cursor,
layer and range that a click on the finding gives), so the report shows what the screen shows.
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

from analysis.findings import Finding, Report
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


def capture_evidence(src: ReportSource, folder: str, findings: list[Finding],
                     settle: Callable[[], None] | None = None) -> dict[int, list[tuple[str, str]]]:
    """For each finding: select it, let the views update, grab each visible view to ``folder``.

    Returns ``{finding index: [(view name, png path)]}``; the cursor, layer, range and selected
    finding are restored afterwards.
    """
    state = src.state
    saved = (state.step, state.layer, state.finding, state.step_range)
    settle = settle or (lambda: src.wait_workers(10000))
    os.makedirs(folder, exist_ok=True)
    out: dict[int, list[tuple[str, str]]] = {}
    try:
        for i, f in enumerate(findings):
            state.select_finding(f)
            settle()
            settle()
            shots = []
            for name, view in src.report_views().items():
                if not view.isVisible() or view.width() < 10 or view.height() < 10:
                    continue
                path = os.path.join(folder, f"{i + 1:02d}-{_slug(f.code)}-{name}.png")
                shots.append((name, save_png(view, path)))
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


def markdown(run: Run, report: Report, shots: dict[int, list[tuple[str, str]]], base: str) -> str:
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
        for name, path in shots.get(i, []):
            lines += [f"![{f.code} — {name} at step {f.steps[0]}]({os.path.relpath(path, base)})", ""]
    notes = group_notes(run.notes + report.notes)
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1d2129;
line-height:1.45}
table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:3px 8px}th{background:#eef}
.sev{color:#fff;padding:1px 6px;border-radius:3px;font-weight:600}.error{background:#d43c3a}
.warning{background:#c88a1c}.info{background:#3d86cf}img{max-width:100%;border:1px solid #ccd;margin:4px 0}
.banner{background:#fde8e7;border:1px solid #e7a6a3;padding:8px;border-radius:4px}code{background:#f2f2f6}"""


def _img(path: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return f"<img alt='{html.escape(os.path.basename(path))}' src='data:image/png;base64,{data}'>"


def html_report(run: Run, report: Report, shots: dict[int, list[tuple[str, str]]]) -> str:
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
        parts += [f"<figure>{_img(p)}<figcaption>{e(name)} at step {f.steps[0]}</figcaption></figure>"
                  for name, p in shots.get(i, [])]
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
